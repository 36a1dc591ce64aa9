"""Authentication, roles, the privileged-field guard and tenant isolation."""
from __future__ import annotations

import base64
import json
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.functional.conftest import TEST_IMAGE, Api, f
from tests.functional.stacks import ROLES, USER_CLAIM


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def with_token(jwt_server, token: str, header: str = "X-Jwt-Assertion-DEV-DEVELOP") -> Api:
    return Api(jwt_server.base_url, {header: token})


def actor_body(**fields) -> dict:
    return {"image": TEST_IMAGE, **{f(k): v for k, v in fields.items()}}


# -- JWTs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("gateway", [False, True], ids=["base64url", "gateway-standard-base64-padded"])
def test_jwt_segment_encodings(jwt_server, jwt_signer, jwt_actor, user_name, gateway):
    user = user_name("enc")
    token = jwt_signer.token(user, ROLES["user"], gateway=gateway)
    client = with_token(jwt_server, token)
    assert jwt_actor(client)["owner"] == user


def test_user_is_the_enduser_claim_before_the_at_sign(jwt_server, jwt_signer, jwt_actor):
    token = jwt_signer.token("jdoe", ROLES["user"], tenant_domain="carbon.super")
    assert jwt_actor(with_token(jwt_server, token))["owner"] == "jdoe"


def forged_tokens(jwt_signer) -> dict[str, str]:
    claims = {USER_CLAIM: "mallory@carbon.super", "http://wso2.org/claims/role": ROLES["admin"]}
    good = jwt_signer.token("mallory", ROLES["user"])
    header, _, signature = good.split(".")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "bad signature": ".".join([header, b64url(json.dumps(claims).encode()), signature]),
        "alg none": ".".join([b64url(b'{"alg":"none","typ":"JWT"}'), b64url(json.dumps(claims).encode()), ""]),
        "foreign key": jwt_signer.token("mallory", ROLES["admin"], key=other_key),
        "hs256 with the public key": jwt.encode(claims, jwt_signer.public_key_b64, algorithm="HS256"),
        "missing user claim": jwt.encode({"http://wso2.org/claims/role": ROLES["admin"]}, jwt_signer.key,
                                         algorithm="RS256"),
        "not a jwt": "hello",
    }


@pytest.mark.parametrize("case", ["bad signature", "alg none", "foreign key", "hs256 with the public key",
                                  "missing user claim", "not a jwt"])
def test_invalid_jwts_are_rejected(jwt_server, jwt_signer, case):
    client = with_token(jwt_server, forged_tokens(jwt_signer)[case])
    for method, path in (("GET", "/actors"), ("POST", "/actors")):
        response = client.call(method, path, json={"image": TEST_IMAGE}, expect=400)
        assert "Invalid JWT" in response["message"], case


def test_no_credentials_at_all(no_credentials):
    for method, path in (("GET", "/actors"), ("GET", "/actors/NolBaJ5y6714M"), ("POST", "/actors/aliases")):
        assert "No JWT or nonce provided" in no_credentials.call(method, path, expect=400)["message"]


def test_missing_roles(jwt_server, jwt_signer, jwt_api, user_name):
    norole = jwt_api(user_name("nobody"), "norole")
    no_claim = with_token(jwt_server, jwt_signer.token(user_name("noclaim"), None))  # -> Internal/everyone
    for client in (norole, no_claim):
        for method, path in (("GET", "/actors"), ("POST", "/actors"), ("GET", "/actors/aliases")):
            response = client.call(method, path, json={"image": TEST_IMAGE}, expect=400)
            assert "missing required role" in response["message"]


def test_unresolvable_identifier_is_404_before_the_role_check(jwt_api, user_name):
    norole = jwt_api(user_name("nobody"), "norole")
    norole.call("GET", "/actors/not-an-alias-anywhere", expect=404)


# -- routing errors -----------------------------------------------------------------------------
def test_unknown_routes_and_methods_are_answered_before_authentication(no_credentials, alice, jwt_actor):
    actor = jwt_actor(alice)
    for client in (no_credentials, alice):
        for method, path in (("DELETE", "/actors"), ("PUT", "/actors/aliases/x/nonces"),
                             ("PATCH", f"/actors/{actor['id']}/nonces")):
            assert "Invalid endpoint or method" in client.call(method, path, expect=405)["message"]
        assert "Invalid endpoint" in client.call("GET", f"/actors/{actor['id']}/bogus", expect=404)["message"]


def test_options_needs_no_credentials(no_credentials):
    for path in ("/actors", "/actors/NolBaJ5y6714M", "/actors/aliases/x/permissions", "/actors/x/nonces"):
        assert no_credentials.request("OPTIONS", path).status_code == 200


@pytest.mark.parametrize("body", ["{broken", "[1, 2]", '"just text"', "17"])
def test_malformed_or_non_object_json_is_400_for_every_role(jwt_api, user_name, body):
    for role in ("user", "admin"):
        client = jwt_api(user_name(role), role)
        response = client.call("POST", "/actors", data=body, headers={"Content-Type": "application/json"},
                               expect=400)
        assert "JSON" in response["message"]


def test_admin_in_the_path_needs_the_admin_role(alice, admin, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    alias = jwt_alias(alice, actor["id"], f"my-admin-{uuid.uuid4().hex[:6]}")["alias"]
    try:
        assert "Admin role required" in alice.call("GET", f"/actors/{alias}", expect=400)["message"]
        assert admin.result("GET", f"/actors/{alias}")["id"] == actor["id"]
        # its owner cannot even delete it (upstream's substring rule, kept)
        assert "Admin role required" in alice.call("DELETE", f"/actors/aliases/{alias}", expect=400)["message"]
    finally:
        admin.call("DELETE", f"/actors/aliases/{alias}")


def test_only_admins_may_add_workers(alice, admin, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}/workers"
    assert "only admins" in alice.call("POST", path, json={"num": 1}, expect=400)["message"]
    alice.result("GET", path)  # reading them needs READ only
    admin.call("POST", path, json={"num": 1})


# -- privileged-field guard --------------------------------------------------------------
GUARDED = [
    ({"privileged": True}, "can make privileged actors"),
    ({"max_workers": 2}, "can set max workers"),
    ({"max_cpus": 1000000000}, "can set max CPUs"),
    ({"mem_limit": "1g"}, "can set mem limit"),
    ({"queue": "default"}, "can set queue"),  # any non-empty queue, as upstream
]


@pytest.mark.parametrize("fields, fragment", GUARDED)
@pytest.mark.parametrize("role", ["user", "limited"])
def test_guard_refuses_resource_fields_to_normal_users(jwt_api, user_name, role, fields, fragment):
    client = jwt_api(user_name(role), role)
    response = client.call("POST", "/actors", json=actor_body(**fields), expect=400)
    assert fragment in response["message"]


@pytest.mark.parametrize("body", [{"maxWorkers": 2}, {"max_workers": 2}, {"memLimit": "1g"}, {"maxCpus": 5}])
def test_guard_checks_both_spellings_whatever_the_case_mode(alice, body):
    alice.call("POST", "/actors", json={"image": TEST_IMAGE, **body}, expect=400)


def test_guard_reads_form_and_query_too(alice):
    response = alice.call("POST", "/actors", data={"image": TEST_IMAGE, "privileged": "true"}, expect=400)
    assert "privileged" in response["message"]
    # fixed: upstream's guard ignored the query string that its parser then read
    response = alice.call("POST", "/actors", params={"privileged": "true"}, json={"image": TEST_IMAGE}, expect=400)
    assert "privileged" in response["message"]


@pytest.mark.parametrize("fields", [
    {"privileged": False}, {"max_workers": None}, {"max_workers": 0}, {"mem_limit": ""}, {"queue": None},
])
def test_guard_lets_unset_values_through(alice, jwt_actor, fields):
    actor = jwt_actor(alice, **{f(k): v for k, v in fields.items()})
    assert actor["privileged"] is False


def test_false_form_string_is_not_a_privilege_request(alice):
    # decision: upstream refused privileged=false from a form (Python truthiness of "false")
    actor = alice.result("POST", "/actors", data={"image": TEST_IMAGE, "privileged": "false"})
    assert actor["privileged"] is False
    alice.call("DELETE", f"/actors/{actor['id']}")


def test_privileged_role_may_set_resource_fields(jwt_api, user_name, jwt_actor):
    privileged = jwt_api(user_name("priv"), "privileged")
    actor = jwt_actor(privileged, **actor_body(max_workers=2, mem_limit="1g", queue="special",
                                               max_cpus=1000000000))
    assert (actor[f("max_workers")], actor[f("mem_limit")], actor["queue"]) == (2, "1g", "special")


def test_admin_may_make_privileged_actors(admin, jwt_actor):
    assert jwt_actor(admin, privileged=True)["privileged"] is True


def test_container_uid_is_free_without_tas(alice, jwt_actor):
    actor = jwt_actor(alice, **{f("use_container_uid"): True})
    assert actor[f("use_container_uid")] is True


def test_guard_applies_to_actor_scoped_posts(alice, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    assert "queue" in alice.call("POST", f"{path}/nonces", json={"queue": "special"}, expect=400)["message"]
    # a message that happens to carry a privileged key is refused too (upstream quirk, kept)
    response = alice.call("POST", f"{path}/messages", json={"privileged": True}, expect=400)
    assert "privileged" in response["message"]
    assert "JSON" in alice.call("POST", f"{path}/nonces", data="{x", headers={"Content-Type": "application/json"},
                                expect=400)["message"]


# -- tenants --------------------------------------------------------------------------------------
def test_same_admin_token_under_two_tenants_sees_disjoint_actors(jwt_server, jwt_signer, jwt_actor, user_name):
    token = jwt_signer.token(user_name("root"), ROLES["admin"])
    develop = with_token(jwt_server, token, "X-Jwt-Assertion-DEV-DEVELOP")
    sd2e = with_token(jwt_server, token, "X-Jwt-Assertion-SD2E")
    in_develop, in_sd2e = jwt_actor(develop), jwt_actor(sd2e)
    develop_ids = {a["id"] for a in develop.result("GET", "/actors")}
    sd2e_ids = {a["id"] for a in sd2e.result("GET", "/actors")}
    assert in_develop["id"] in develop_ids and in_develop["id"] not in sd2e_ids
    assert in_sd2e["id"] in sd2e_ids and in_sd2e["id"] not in develop_ids
    sd2e.call("GET", f"/actors/{in_develop['id']}", expect=404)
    develop.call("GET", f"/actors/{in_sd2e['id']}", expect=404)
    sd2e.call("DELETE", f"/actors/{in_develop['id']}", expect=404)
    assert develop.result("GET", f"/actors/{in_develop['id']}")["id"] == in_develop["id"]


@pytest.mark.parametrize("header, tenant", [
    ("x-jwt-assertion-sd2e", "SD2E"),
    ("X-JWT-ASSERTION-Tacc-Prod", "TACC-PROD"),
    ("Assertion", "DEV_STAGING"),
])
def test_tenant_comes_from_the_header_name(jwt_server, jwt_signer, jwt_actor, user_name, header, tenant):
    client = with_token(jwt_server, jwt_signer.token(user_name("t"), ROLES["user"]), header)
    actor = jwt_actor(client)
    nonce = client.result("POST", f"/actors/{actor['id']}/nonces")
    assert nonce["id"].rsplit("_", 1)[0] == tenant


def test_none_mode_takes_the_tenant_header_verbatim(api):
    tenant = f"iso-{uuid.uuid4().hex[:6]}"
    isolated = Api(api.base_url, {"tenant": tenant})
    actor = isolated.result("POST", "/actors", json={"image": TEST_IMAGE})
    try:
        assert actor["owner"] == "anonymous"
        assert all(a["id"] != actor["id"] for a in api.result("GET", "/actors"))
        nonce = isolated.result("POST", f"/actors/{actor['id']}/nonces")
        assert nonce["id"].rsplit("_", 1)[0] == tenant
        assert nonce["roles"] == ["ALL"]
    finally:
        isolated.call("DELETE", f"/actors/{actor['id']}")


@pytest.mark.parametrize("exp_offset, in_milliseconds, accepted", [
    (-60, False, False), (-60, True, False), (3600, False, True), (3600, True, True),
])
def test_expiry_is_enforced_in_seconds_or_gateway_milliseconds(jwt_server, jwt_signer, exp_offset, in_milliseconds, accepted):
    import time

    exp = time.time() + exp_offset
    token = jwt_signer.token("expiring", ROLES["user"], exp=int(exp * 1000) if in_milliseconds else int(exp))
    response = Api(jwt_server.base_url, {"X-Jwt-Assertion-DEV-DEVELOP": token}).request("GET", "/actors", expect=None)
    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 400 and "expired" in response.json()["message"], response.text


def test_a_tenant_header_that_does_not_match_the_jwt_is_refused(jwt_server, jwt_signer):
    headers = jwt_signer.headers("tenantuser", "user", "DEV-DEVELOP")
    mismatch = Api(jwt_server.base_url, {**headers, "tenant": "SD2E"}).request("GET", "/actors", expect=None)
    assert mismatch.status_code == 400 and "does not match" in mismatch.json()["message"]
    same = Api(jwt_server.base_url, {**headers, "tenant": "dev-develop"}).request("GET", "/actors", expect=None)
    assert same.status_code == 200


# -- ALL is not a role in JWT mode; a tenant is required -------------------------------------------
def test_a_jwt_role_claim_of_ALL_grants_nothing(jwt_server, jwt_signer, user_name):
    client = with_token(jwt_server, jwt_signer.token(user_name("mallory"), "ALL"))
    for method, path in (("GET", "/actors"), ("GET", "/actors/admin"), ("POST", "/actors")):
        response = client.call(method, path, json={"image": TEST_IMAGE}, expect=400)
        assert "missing required role" in response["message"]


def test_an_empty_tenant_suffix_is_refused(jwt_server, jwt_signer, user_name):
    client = with_token(jwt_server, jwt_signer.token(user_name("t"), ROLES["admin"]), "X-Jwt-Assertion-")
    assert "tenant" in client.call("GET", "/actors", expect=400)["message"]


# -- a JWT-configured server counts as up ------------------------------------------------------
def test_the_readiness_check_takes_any_answer(jwt_server):
    """`make up` waits with scripts/lib.sh's http_answers: a JWT server answers 400 without a token
    and is up; a port nobody listens on is not."""
    import shutil
    import subprocess
    from pathlib import Path

    lib = Path(__file__).resolve().parents[2] / "scripts" / "lib.sh"
    if not lib.exists() or not shutil.which("curl"):
        pytest.skip("needs the repository's scripts and curl (the testsuite image has neither)")

    def answers(url: str) -> bool:
        return subprocess.run(["bash", "-c", f"source {lib} && http_answers {url}"], timeout=30).returncode == 0

    assert Api(jwt_server.base_url).request("GET", "/actors", expect=None).status_code == 400
    assert answers(f"{jwt_server.base_url}/actors")
    assert not answers("http://127.0.0.1:9/actors")
