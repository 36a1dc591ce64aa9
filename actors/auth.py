"""Authentication: who is calling, from which tenant, with which roles.

``[web] access_control`` is ``none`` (user ``anonymous``, tenant from the ``tenant`` header or
``[web] tenant_name``, role ``ALL``) or ``jwt`` (a signed assertion in an ``X-Jwt-Assertion-<TENANT>``
or ``Assertion`` header, verified with PyJWT against ``[web] apim_public_key``).
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm

from actors import codes
from actors.config import ConfigError, conf, parse_bool
from actors.errors import PermissionsException

JWT_HEADER_PREFIX = "x-jwt-assertion-"
USER_CLAIM = "http://wso2.org/claims/enduser"
ROLE_CLAIM = "http://wso2.org/claims/role"
# RS256 under the name some WSO2 gateways write in the header (the Java signature algorithm name)
GATEWAY_RSA_ALGORITHM = "SHA256withRSA"
ACCEPTED_ALGORITHMS = ["RS256", GATEWAY_RSA_ALGORITHM]
# Tenant names become part of store keys and queue names (docs/compatibility.md, "Tenants"): letters,
# digits, '_', '.', '-'; never ':' (the separator of alias keys) nor anything else.
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/_-]")

_jws = jwt.PyJWS(algorithms=["RS256"])
_jws.register_algorithm(GATEWAY_RSA_ALGORITHM, RSAAlgorithm(RSAAlgorithm.SHA256))


@dataclass
class Identity:
    user: str
    tenant: str
    roles: list[str] = field(default_factory=list)
    jwt_header_name: str | None = None
    nonce_id: str | None = None
    nonce_level: str | None = None  # the level of the nonce the request was authenticated with
    # ``access_control: none`` only: the caller may do anything. A JWT role claim of ``ALL`` is an
    # ordinary string and grants nothing.
    unrestricted: bool = False

    @property
    def is_admin(self) -> bool:
        return self.unrestricted or codes.ADMIN_ROLE in self.roles

    @property
    def is_privileged(self) -> bool:
        return self.is_admin or codes.PRIVILEGED_ROLE in self.roles


def access_control() -> str:
    return conf().get("web", "access_control", "jwt").strip().lower()


def authenticate(headers: dict[str, str]) -> Identity | None:
    """The caller's identity from the request headers, or None when no credential is present
    (the caller may then try a nonce). Raises PermissionsException for a credential that is bad."""
    mode = access_control()
    if mode == "none":
        tenant = header_value(headers, "tenant") or conf().get("web", "tenant_name", "dev_staging")
        return Identity(user="anonymous", tenant=checked_tenant(tenant), roles=[codes.ALL_ROLE], unrestricted=True)
    if mode != "jwt":
        raise PermissionsException(f"Invalid access_control setting: {mode}.")
    found = find_jwt_header(headers)
    if found is None:
        return None
    header_name, tenant, token = found
    checked_tenant(tenant)
    claims = decode_jwt(token)
    if conf().get_bool("web", "check_jwt_expiry", True):
        check_expiry(claims)
    requested = header_value(headers, "tenant")
    if requested and requested.upper() != tenant:
        raise PermissionsException(
            f"Invalid request: the tenant header ({requested}) does not match the JWT's tenant ({tenant}).")
    return identity_from_claims(claims, tenant, header_name)


def checked_tenant(tenant: str) -> str:
    """The tenant, if it is a name Abaco can key records by; else the request is refused."""
    if not tenant:
        raise PermissionsException("Invalid JWT header: the header names no tenant (X-Jwt-Assertion-<TENANT>).")
    if not TENANT_NAME.match(tenant):
        raise PermissionsException(
            f"Invalid tenant {tenant[:80]!r}: a tenant name is 1 to 64 letters, digits, '_', '.' or '-'.")
    return tenant


def check_expiry(claims: dict) -> None:
    """Upstream never enforced ``exp`` because the gateway writes it in milliseconds; we enforce it
    (``[web] check_jwt_expiry``, default true) and read a value too large for seconds as milliseconds."""
    exp = claims.get("exp")
    if exp is None:
        return
    try:
        seconds = float(exp)
    except (TypeError, ValueError):
        raise PermissionsException("Invalid JWT: the exp claim is not a number.") from None
    if seconds > 1e11:
        seconds /= 1000.0
    if seconds < time.time():
        raise PermissionsException("Invalid JWT: the token has expired.")


def header_value(headers: dict[str, str], name: str) -> str | None:
    """HTTP header names are case-insensitive; a plain dict of them is not."""
    return next((v for k, v in headers.items() if k.lower() == name), None)


def find_jwt_header(headers: dict[str, str]) -> tuple[str, str, str] | None:
    for name, value in headers.items():
        if name.lower().startswith(JWT_HEADER_PREFIX):
            return name, name[len(JWT_HEADER_PREFIX):].upper(), value
    for name, value in headers.items():
        if name.lower() == "assertion":
            return name, "DEV_STAGING", value
    return None


def public_key():
    """``[web] apim_public_key``: base64 DER (upstream's form) or a PEM block."""
    raw = conf().get("web", "apim_public_key", "").strip()
    if not raw:
        raise PermissionsException("Invalid JWT: no public key is configured to verify it.")
    if raw.startswith("-----BEGIN"):
        return serialization.load_pem_public_key(raw.encode())
    return serialization.load_der_public_key(base64.b64decode(raw))


def lenient_signature(token: str) -> str:
    """The token with its signature segment cleaned the way upstream's base64 decoder read it:
    characters outside the base64 alphabets (a trailing ``\r`` from a copied token, padding) are
    dropped. Only the signature is cleaned: the header and payload are verified exactly as received,
    because a gateway signs the text it emits (standard base64 with ``=`` padding, for WSO2)."""
    signing_input, dot, signature = token.strip().rpartition(".")
    return f"{signing_input}{dot}{NOT_BASE64.sub('', signature)}" if dot else token


def decode_jwt(token: str) -> dict:
    """The verified claims of ``token`` (RS256, also when the header calls it ``SHA256withRSA``)."""
    try:
        payload = _jws.decode(lenient_signature(token), public_key(), algorithms=ACCEPTED_ALGORITHMS)
        claims = json.loads(payload)
    except (jwt.PyJWTError, ValueError, binascii.Error, TypeError) as e:
        raise PermissionsException(f"Invalid JWT: {e}") from None
    if not isinstance(claims, dict):
        raise PermissionsException("Invalid JWT: the payload is not a JSON object.")
    return claims


def identity_from_claims(claims: dict, tenant: str, header_name: str) -> Identity:
    enduser = claims.get(USER_CLAIM)
    if not enduser or not isinstance(enduser, str):
        raise PermissionsException("Invalid JWT: the user claim is missing.")
    roles_claim = claims.get(ROLE_CLAIM) or ""
    roles = [r.strip() for r in str(roles_claim).split(",") if r.strip()] or [codes.EVERYONE_ROLE]
    return Identity(user=enduser.split("@", 1)[0], tenant=tenant, roles=roles, jwt_header_name=header_name)


def config_flag(section: str, option: str, default: bool) -> bool:
    """A flag upstream tested for string truthiness (so ``False`` enabled it).
    We parse it with the project's boolean rule: a missing option means ``default``, an empty value
    is off, and any other non-boolean text keeps upstream's meaning of "set"."""
    raw = conf().get(section, option, None)
    if raw is None:
        return default
    raw = raw.strip()
    if not raw:
        return False
    try:
        return parse_bool(raw)
    except ConfigError:
        return True


def accepts_nonce() -> bool:
    """``[web] accept_nonce``: may ``?x-nonce=`` stand in for a missing or invalid JWT."""
    return config_flag("web", "accept_nonce", True)


def tas_uid_enabled() -> bool:
    """``[workers] use_tas_uid``: only then is ``use_container_uid`` a privileged field."""
    return config_flag("workers", "use_tas_uid", False)


def user_role() -> str:
    return conf().get("web", "user_role", codes.DEFAULT_USER_ROLE)


def has_abaco_role(identity: Identity) -> bool:
    if identity.unrestricted:
        return True
    known = {codes.ADMIN_ROLE, codes.PRIVILEGED_ROLE, codes.LIMITED_ROLE, user_role()}
    return any(role in known for role in identity.roles)
