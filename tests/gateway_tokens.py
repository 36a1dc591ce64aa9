"""JWTs shaped the way an API gateway (WSO2 APIM) writes them, for the auth tests.

A WSO2 gateway encodes the header and payload in the standard base64 alphabet with ``=`` padding
(not base64url), signs that very text with RSA/SHA-256, and some versions name the algorithm
``SHA256withRSA`` (the Java name) in the header. These tokens are built by hand here, not by PyJWT,
so the tests check what the server accepts from a gateway, not what our own library produces.
"""
from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

USER_CLAIM = "http://wso2.org/claims/enduser"
ROLE_CLAIM = "http://wso2.org/claims/role"


def standard_b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def gateway_token(key: rsa.RSAPrivateKey, claims: dict, alg: str = "SHA256withRSA",
                  signature_suffix: str = "") -> str:
    """header.payload.signature, each segment standard base64 with padding, signed over the first two
    exactly as written. ``signature_suffix`` appends raw characters to the signature segment (the
    ``\\r\\n`` of a token copied from a file, for example)."""
    header = {"typ": "JWT", "alg": alg, "x5t": "NmJmOGUxMzZlYjM2ZDRhNTZlYTA1YzdhZTRiOWE0NWIzYjAzZTI0Nw=="}
    signing_input = f"{standard_b64(json.dumps(header).encode())}.{standard_b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{standard_b64(signature)}{signature_suffix}"


def wso2_claims(user: str, roles: str | None, tenant_domain: str = "carbon.super", **extra) -> dict:
    claims = {"iss": "wso2.org/products/am", USER_CLAIM: f"{user}@{tenant_domain}", **extra}
    if roles is not None:
        claims[ROLE_CLAIM] = roles
    return claims
