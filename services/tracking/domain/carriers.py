"""Tracking URLs per carrier; any carrier without a template gets a universal tracking page."""

from urllib.parse import quote

TEMPLATES = {
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}",
    "ups": "https://www.ups.com/track?tracknum={n}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={n}",
    "dhl express": "https://www.dhl.com/en/express/tracking.html?AWB={n}",
    "yunexpress": "https://www.yuntrack.com/parcelTracking?id={n}",
    "4px": "https://track.4px.com/#/result/0/{n}",
}
UNIVERSAL = "https://t.17track.net/en#nums={n}"


def tracking_url(carrier: str, tracking_number: str) -> str:
    template = TEMPLATES.get(carrier.strip().lower(), UNIVERSAL)
    return template.format(n=quote(tracking_number, safe=""))
