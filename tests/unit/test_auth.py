"""Bearer tokens: HS256 for development, RS256 with a public key for an external identity provider."""

import datetime as dt

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from shared.auth import TokenVerifier, mint_token
from shared.clock import utcnow
from shared.errors import Unauthorized
from shared.settings import ServiceSettings


def test_a_minted_development_token_verifies():
    settings = ServiceSettings()
    token = mint_token(settings.auth_jwt_secret.get_secret_value(), sub="u1", merchant_id="m1", role="ops")
    principal = TokenVerifier(settings).verify(token)
    assert (principal.sub, principal.merchant_id, principal.role) == ("u1", "m1", "ops")


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "u1", "merchant_id": "m1", "role": "admin"},  # unknown role
        {"sub": "u1", "role": "merchant"},  # no merchant
        {"merchant_id": "m1", "role": "merchant"},  # no subject
    ],
)
def test_tokens_missing_what_we_need_are_refused(claims):
    settings = ServiceSettings()
    token = jwt.encode(
        {**claims, "exp": utcnow() + dt.timedelta(minutes=5)},
        settings.auth_jwt_secret.get_secret_value(),
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        TokenVerifier(settings).verify(token)


def test_expired_and_foreign_tokens_are_refused():
    settings = ServiceSettings()
    secret = settings.auth_jwt_secret.get_secret_value()
    expired = mint_token(secret, sub="u", merchant_id="m", role="merchant", ttl=dt.timedelta(seconds=-1))
    foreign = mint_token("another-secret-of-at-least-32-bytes!!", sub="u", merchant_id="m", role="merchant")
    for token in (expired, foreign, "not-a-jwt"):
        with pytest.raises(Unauthorized):
            TokenVerifier(settings).verify(token)


def test_rs256_tokens_from_an_identity_provider_verify_with_its_public_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = ServiceSettings(auth_jwt_algorithm="RS256", auth_jwt_public_key=public_pem, auth_audience="dropship")
    claims = {
        "sub": "u1",
        "merchant_id": "m1",
        "role": "merchant",
        "aud": "dropship",
        "exp": utcnow() + dt.timedelta(minutes=5),
    }
    assert TokenVerifier(settings).verify(jwt.encode(claims, key, algorithm="RS256")).merchant_id == "m1"
    with pytest.raises(Unauthorized):  # right key, wrong audience
        TokenVerifier(settings).verify(jwt.encode({**claims, "aud": "other"}, key, algorithm="RS256"))
    with pytest.raises(Unauthorized):  # an HS256 token signed with the public key must not pass (alg confusion)
        TokenVerifier(settings).verify(jwt.encode(claims, "x" * 32, algorithm="HS256"))


def test_production_refuses_the_development_secret():
    with pytest.raises(ValueError, match="AUTH_JWT_SECRET"):
        ServiceSettings(environment="production")
    ServiceSettings(environment="production", auth_jwt_secret=SecretStr("a-real-secret-from-the-vault-0123456789"))
