"""JWT verification with tokens written the way an API gateway writes them (tests/gateway_tokens.py),
expiry, roles and tenant names (items 1, 2 and 4)."""
from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from actors import auth, codes
from actors.errors import PermissionsException
from tests.gateway_tokens import gateway_token, wso2_claims

pytestmark = pytest.mark.unit

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
USER_ROLES = "Internal/abaco-user,Internal/everyone"


@pytest.fixture(autouse=True)
def gateway_key(monkeypatch):
    der = KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("web_access_control", "jwt")
    monkeypatch.setenv("web_apim_public_key", base64.b64encode(der).decode())
    monkeypatch.setenv("web_user_role", "Internal/abaco-user")
    monkeypatch.delenv("web_check_jwt_expiry", raising=False)


def standard_alphabet_token(alg: str = "SHA256withRSA", **claims) -> str:
    """A gateway token whose header and payload need the standard alphabet and padding: a base64url
    rewrite of them changes the signed text."""
    for n in range(200):
        # '~' and '?' end in many 1 bits, which the standard and url alphabets spell differently
        jti = "~" * (n % 7) + "?" * (n // 7)
        token = gateway_token(KEY, wso2_claims("jdoe", USER_ROLES, jti=jti, **claims), alg=alg)
        signed = token.rsplit(".", 1)[0]
        if "=" in signed and ("+" in signed or "/" in signed):
            return token
    raise AssertionError("no claims gave a token that needs the standard alphabet")


def identity(token: str, header: str = "X-Jwt-Assertion-DEV-DEVELOP") -> auth.Identity:
    return auth.authenticate({header: token})


@pytest.mark.parametrize("alg", ["SHA256withRSA", "RS256"])
def test_gateway_tokens_are_verified_over_the_text_as_received(alg):
    ident = identity(standard_alphabet_token(alg))
    assert (ident.user, ident.tenant, ident.roles) == ("jdoe", "DEV-DEVELOP", USER_ROLES.split(","))


@pytest.mark.parametrize("suffix", ["\r\n", "\r", "\n", " ", "\t\r\n", "]"])
def test_trailing_characters_after_the_signature_are_ignored(suffix):
    token = standard_alphabet_token() + suffix
    assert identity(token).user == "jdoe"


def test_base64url_tokens_are_accepted_too():
    import jwt

    token = jwt.encode(wso2_claims("jdoe", USER_ROLES), KEY, algorithm="RS256")
    assert identity(token).user == "jdoe"


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = base64.b64decode(payload).replace(b"Internal/abaco-user", b"Internal/abaco-admn")
    return ".".join([header, base64.b64encode(claims).decode(), signature])


@pytest.mark.parametrize("make", [
    pytest.param(lambda: tampered(standard_alphabet_token()), id="payload changed after signing"),
    pytest.param(lambda: gateway_token(OTHER_KEY, wso2_claims("jdoe", USER_ROLES)), id="another key"),
    pytest.param(lambda: gateway_token(KEY, wso2_claims("jdoe", USER_ROLES), alg="none"), id="alg none"),
    pytest.param(lambda: gateway_token(KEY, wso2_claims("jdoe", USER_ROLES), alg="HS256"), id="alg HS256"),
    pytest.param(lambda: standard_alphabet_token().rsplit(".", 1)[0] + ".", id="no signature"),
    pytest.param(lambda: "not.a.jwt", id="garbage"),
])
def test_bad_tokens_are_refused(make):
    with pytest.raises(PermissionsException, match="Invalid JWT"):
        identity(make())


def test_expiry_is_enforced_unless_turned_off(monkeypatch):
    expired = standard_alphabet_token(exp=int((time.time() - 60) * 1000))  # the gateway's milliseconds
    with pytest.raises(PermissionsException, match="expired"):
        identity(expired)
    monkeypatch.setenv("web_check_jwt_expiry", "false")
    assert identity(expired).user == "jdoe"


def test_a_role_claim_of_ALL_is_an_ordinary_string_in_jwt_mode():
    token = gateway_token(KEY, wso2_claims("mallory", "ALL"))
    ident = identity(token)
    assert ident.roles == ["ALL"]
    assert not ident.is_admin and not ident.is_privileged and not ident.unrestricted
    assert not auth.has_abaco_role(ident)


def test_none_mode_is_unrestricted(monkeypatch):
    monkeypatch.setenv("web_access_control", "none")
    ident = auth.authenticate({})
    assert ident.unrestricted and ident.is_admin and ident.roles == [codes.ALL_ROLE]


@pytest.mark.parametrize("header", ["X-Jwt-Assertion-", "X-Jwt-Assertion-DEV:STAGING", "X-Jwt-Assertion-A/B"])
def test_tenant_names_that_cannot_key_records_are_refused(header):
    with pytest.raises(PermissionsException, match="tenant"):
        identity(standard_alphabet_token(), header)


def test_none_mode_tenant_header_is_checked_too(monkeypatch):
    monkeypatch.setenv("web_access_control", "none")
    assert auth.authenticate({"tenant": "dev_staging"}).tenant == "dev_staging"
    with pytest.raises(PermissionsException, match="tenant"):
        auth.authenticate({"tenant": "a:b"})


@pytest.mark.parametrize("headers, found", [
    ({"X-Jwt-Assertion-Sd2E": "t"}, ("X-Jwt-Assertion-Sd2E", "SD2E", "t")),
    ({"x-jwt-assertion-dev-develop": "t"}, ("x-jwt-assertion-dev-develop", "DEV-DEVELOP", "t")),
    ({"Assertion": "t"}, ("Assertion", "DEV_STAGING", "t")),
    ({"Authorization": "Bearer x"}, None),
])
def test_find_jwt_header(headers, found):
    assert auth.find_jwt_header(headers) == found


def test_identity_from_claims():
    ident = auth.identity_from_claims(
        {auth.USER_CLAIM: "jdoe@carbon.super", auth.ROLE_CLAIM: "Internal/abaco-admin, Internal/everyone"},
        "SD2E", "X-Jwt-Assertion-SD2E")
    assert (ident.user, ident.tenant, ident.roles) == ("jdoe", "SD2E", ["Internal/abaco-admin", "Internal/everyone"])
    assert ident.is_admin and ident.is_privileged
    assert auth.identity_from_claims({auth.USER_CLAIM: "x"}, "T", "h").roles == [codes.EVERYONE_ROLE]
    with pytest.raises(PermissionsException, match="Invalid JWT"):
        auth.identity_from_claims({auth.ROLE_CLAIM: "Internal/abaco-admin"}, "T", "h")
