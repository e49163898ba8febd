"""load_config: the demo configuration, overrides, and every mistake reported at file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.authserver.signing_keys import generate_key
from gateway.config.errors import ConfigError
from gateway.config.loader import load_config

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo" / "gateway.yaml"

BASE = """\
public_url: https://gateway.example.nl
routes:
  - path: /deelnemers/uzovi/5151/graphql
    upstream: http://127.0.0.1:9001/graphql
    deelnemer: {id_type: UZOVI, id: "5151", kind: zorgkantoor}
    policies: [policies]
tokens:
  trusted_issuers:
    - issuer: https://nid.example.nl
      jwks_url: https://nid.example.nl/jwks.json
"""


def write(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    (tmp_path / "policies").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def test_demo_config_loads_its_deelnemer_register_and_rest_routes_and_five_clients() -> None:
    config = load_config(DEMO)
    assert [r.path for r in config.routes] == [
        "/deelnemers/uzovi/5151/graphql",
        "/deelnemers/uzovi/5152/graphql",
        "/deelnemers/agb/12345678/graphql",
        "/deelnemers/kvk/62253778/graphql",
        "/registers/bemiddelingsregister/graphql",
        "/registers/indicatieregister/graphql",
        "/ketenindex",
        "/voorzitter/uitkomsten",
        "/klantinteracties/api/v1",
    ]
    assert [r.deelnemer.kind if r.deelnemer else None for r in config.routes] == [
        "zorgkantoor",
        "zorgkantoor",
        "zorgaanbieder",
        "onderneming",
        "register",
        "register",
        None,
        "zorgkantoor",
        None,
    ]
    assert config.authserver is not None
    assert [c.client_id for c in config.authserver.clients] == [
        "ciz",
        "zorgkantoor-5151",
        "zorgkantoor-5152",
        "zorgaanbieder-12345678",
        "no-instantie",
    ]
    assert config.tokens.trusted_issuers[0].builtin


def test_the_register_routes_validate_against_their_register_schema_and_need_its_scope() -> None:
    bemiddelingen, indicaties = load_config(DEMO).routes[4:6]
    assert bemiddelingen.schema == (REPO / "config/schemas/bemiddelingsregister.graphql").resolve()
    assert indicaties.schema == (REPO / "config/schemas/indicatieregister.graphql").resolve()
    assert bemiddelingen.scope_default == (
        "registers/wlzbemiddelingsregister/bemiddelingen/bemiddeling:read"
    )
    assert indicaties.scope_default == "registers/wlzindicatieregister/indicaties/indicatie:read"


def test_route_audience_is_public_url_plus_path() -> None:
    route = load_config(DEMO).routes[0]
    assert route.audience == "http://127.0.0.1:8080/deelnemers/uzovi/5151/graphql"


def test_scope_templates_are_filled_with_the_route_kind() -> None:
    route = load_config(DEMO).routes[2]
    assert (
        route.required_scopes["zendNotificatie"]
        == "organisaties/zorgaanbieder/notificaties/notificatie:create"
    )
    assert (
        route.required_scopes["zendMelding"]
        == "organisaties/zorgaanbieder/meldingen/melding:create"
    )


def test_policy_paths_are_resolved_relative_to_the_yaml_file() -> None:
    route = load_config(DEMO).routes[0]
    assert route.policies == ((REPO / "policies" / "iwlz").resolve(),)


def test_routes_wildcard_audience_expands_to_every_route() -> None:
    config = load_config(DEMO)
    assert config.authserver is not None
    ciz = config.authserver.clients[0]
    endpoints = {
        config.public_url + path
        for path in (
            "/catalogus/notificatietypen",
            "/adresboek",
            "/abonnementen",
            "/access/v1/evaluation",
            "/access/v1/evaluations",
        )
    }
    central = config.public_url + "/notificaties/graphql"
    assert ciz.allowed_audiences == {r.audience for r in config.routes} | endpoints | {central}
    assert ciz.accepts("client_secret_basic") and ciz.accepts("client_secret_post")
    assert not ciz.accepts("private_key_jwt")


def test_port_override_moves_public_url_issuer_and_audiences() -> None:
    config = load_config(DEMO, port=9999)
    assert config.server.port == 9999
    assert config.public_url == config.issuer == "http://127.0.0.1:9999"
    assert config.routes[0].audience == "http://127.0.0.1:9999/deelnemers/uzovi/5151/graphql"
    assert config.authserver is not None
    assert config.routes[0].audience in config.authserver.clients[0].allowed_audiences


def test_port_override_keeps_a_real_public_url(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), port=9999)
    assert config.public_url == "https://gateway.example.nl" and config.server.port == 9999


def test_upstream_override_points_every_route_at_it() -> None:
    config = load_config(DEMO, upstream="http://127.0.0.1:7000/graphql")
    assert {r.upstream for r in config.routes} == {"http://127.0.0.1:7000/graphql"}


def test_defaults_when_sections_are_absent(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    route = config.routes[0]
    assert route.timeouts.total == 30.0 and route.pool_size == 100 and not route.strict_input
    assert config.authserver is None and config.observability.log_format == "json"
    assert config.tokens.claim_mapping.identifiers  # the default nID mapping
    assert config.server.max_body_bytes == 1024 * 1024


def test_environment_reference_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NID_TEST_UPSTREAM", "http://10.0.0.5:8000/graphql")
    path = write(tmp_path, BASE.replace("http://127.0.0.1:9001/graphql", "${NID_TEST_UPSTREAM}"))
    assert load_config(path).routes[0].upstream == "http://10.0.0.5:8000/graphql"


def test_environment_reference_keeps_yaml_typing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NID_TEST_PORT", "8443")
    path = write(tmp_path, BASE + "server:\n  port: ${NID_TEST_PORT}\n")
    assert load_config(path).server.port == 8443


def test_missing_environment_variable_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NID_TEST_MISSING", raising=False)
    path = write(tmp_path, BASE.replace("http://127.0.0.1:9001/graphql", "${NID_TEST_MISSING}"))
    err = error_of(path)
    assert (err.line, err.col) == (4, 15)
    assert "environment variable NID_TEST_MISSING is not set" in str(err)
    assert str(err).startswith(f"{path}:4:15: ")


def test_unknown_key_is_an_error_with_file_line_col(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE.replace("    policies: [policies]", "    policies: [policies]\n    timeout: 5"),
    )
    err = error_of(path)
    assert str(err).startswith(
        f"{path}:7:5: unknown key 'timeout' in route (did you mean 'timeouts'? expected one of "
    )


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "server:\n  port: eighty\n")
    err = error_of(path)
    assert str(err) == f"{path}:12:9: expected an integer, got a string"


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    err = error_of(tmp_path / "absent.yaml")
    assert str(err) == f"{tmp_path / 'absent.yaml'}:0:0: file not found (check the path)"


def test_invalid_yaml_is_an_error_with_position(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "routes: [\n"))
    assert "invalid YAML" in str(err) and err.line >= 1


def test_missing_policy_path_is_an_error(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, BASE.replace("[policies]", "[nowhere]")))
    assert err.line == 6 and "file or directory not found" in err.message


def test_duplicate_route_path_is_an_error(tmp_path: Path) -> None:
    route = BASE.split("routes:\n")[1].split("tokens:")[0]
    err = error_of(write(tmp_path, BASE.replace("tokens:", route + "tokens:")))
    assert "duplicate route path" in err.message and err.line == 7


def test_token_lifetime_over_an_hour_is_an_error(tmp_path: Path) -> None:
    text = DEMO.read_text().replace("token_lifetime: 3600", "token_lifetime: 7200")
    (tmp_path / "keys").mkdir()
    path = tmp_path / "gateway.yaml"
    path.write_text(text.replace("../../policies/iwlz", str(REPO / "policies" / "iwlz")))
    (tmp_path / "clients.yaml").write_text((DEMO.parent / "clients.yaml").read_text())
    err = error_of(path)
    assert "7200 is too large (expected at most 3600)" in str(err)


def test_generate_if_missing_outside_demo_is_an_error(tmp_path: Path) -> None:
    text = BASE + "authserver:\n  signing: {keys_dir: keys, generate_if_missing: true}\n"
    err = error_of(write(tmp_path, text))
    assert "demo only" in err.message


def test_audience_must_be_an_absolute_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE.replace(
            "    policies: [policies]", "    policies: [policies]\n    audience: deelnemer-5151"
        ),
    )
    assert "not an absolute http(s) URL" in error_of(path).message


def test_hmac_algorithm_for_a_trusted_issuer_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "      algorithms: [HS256]\n")
    assert "HS256" in error_of(path).message


def test_jwks_refresh_period_defaults_and_is_checked(tmp_path: Path) -> None:
    (issuer,) = load_config(write(tmp_path, BASE)).tokens.trusted_issuers
    assert issuer.jwks_refresh_seconds == 300.0
    (issuer,) = load_config(
        write(tmp_path, BASE + "      jwks_refresh_seconds: 60\n")
    ).tokens.trusted_issuers
    assert issuer.jwks_refresh_seconds == 60.0
    err = error_of(write(tmp_path, BASE + "      jwks_refresh_seconds: -1\n"))
    assert err.line == 11 and "too small" in err.message  # the jwks_refresh_seconds line


def test_mistake_in_clients_file_names_that_file(tmp_path: Path) -> None:
    text = BASE + "authserver:\n  signing: {keys_dir: keys}\n  clients_file: clients.yaml\n"
    path = write(tmp_path, text)
    write(
        tmp_path,
        """\
        clients:
          - client_id: a
            auth_method: client_secret_basic
            secret_hash: plain-text-secret
        """,
        "clients.yaml",
    )
    err = error_of(path)
    assert err.file == str(tmp_path / "clients.yaml") and err.line == 4
    assert "invalid secret_hash" in err.message


def test_clear_secret_from_environment_is_hashed_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NID_TEST_SECRET", "from-the-environment")
    text = BASE + "authserver:\n  signing: {keys_dir: keys}\n  clients_file: clients.yaml\n"
    path = write(tmp_path, text)
    write(
        tmp_path,
        """\
        clients:
          - client_id: a
            auth_method: client_secret_post
            secret: ${NID_TEST_SECRET}
        """,
        "clients.yaml",
    )
    config = load_config(path)
    assert config.authserver is not None
    stored = config.authserver.clients[0].secret_hash
    assert (
        stored is not None and stored.startswith("sha256$") and "from-the-environment" not in stored
    )


def test_unknown_auth_method_is_an_error(tmp_path: Path) -> None:
    text = (
        BASE
        + "authserver:\n  signing: {keys_dir: keys}\n"
        + "  clients: [{client_id: a, auth_method: password}]\n"
    )
    assert "unknown auth_method 'password'" in error_of(write(tmp_path, text)).message


def test_config_objects_are_immutable() -> None:
    config = load_config(DEMO)
    with pytest.raises(AttributeError):
        config.routes[0].path = "/x"  # type: ignore[misc]


def test_plain_http_public_url_with_the_authorization_server_is_refused(tmp_path: Path) -> None:
    # OAuth 2 sends client secrets to the token endpoint: TLS is required, except on loopback.
    text = BASE.replace("https://gateway.example.nl", "http://gateway.example.nl")
    text += "authserver:\n  signing: {keys_dir: keys}\n  clients_file: clients.yaml\n"
    path = write(tmp_path, text)
    write(tmp_path, "clients: []\n", "clients.yaml")
    err = error_of(path)
    assert (err.line, err.col) == (1, 13)
    assert "must be https when the authorization server is enabled" in err.message
    assert "loopback" in str(err)


def test_plain_http_public_url_is_fine_on_loopback_and_without_the_authorization_server(
    tmp_path: Path,
) -> None:
    write(tmp_path, "clients: []\n", "clients.yaml")
    (tmp_path / "keys").mkdir()
    generate_key(tmp_path / "keys", "ES256")
    loopback = BASE.replace("https://gateway.example.nl", "http://127.0.0.1:8080")
    loopback += "authserver:\n  signing: {keys_dir: keys}\n  clients_file: clients.yaml\n"
    assert load_config(write(tmp_path, loopback)).public_url == "http://127.0.0.1:8080"
    no_authserver = BASE.replace("https://gateway.example.nl", "http://gateway.example.nl")
    assert load_config(write(tmp_path, no_authserver)).authserver is None


AUTHSERVER = BASE + "authserver:\n  signing: {keys_dir: keys}\n"


def test_brute_force_limits_have_defaults(tmp_path: Path) -> None:
    auth = load_config(write(tmp_path, AUTHSERVER)).authserver
    assert auth is not None
    limits = auth.brute_force
    assert (limits.max_failures_per_client, limits.max_failures_per_address) == (10, 50)
    assert limits.window_seconds == 60


def test_brute_force_limits_are_read(tmp_path: Path) -> None:
    text = AUTHSERVER + (
        "  brute_force:\n"
        "    max_failures_per_client: 5\n"
        "    max_failures_per_address: 20\n"
        "    window_seconds: 300\n"
    )
    auth = load_config(write(tmp_path, text)).authserver
    assert auth is not None
    limits = auth.brute_force
    assert (limits.max_failures_per_client, limits.max_failures_per_address) == (5, 20)
    assert limits.window_seconds == 300


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("max_failures_per_client: 0", "0 is too small (expected at least 1)"),
        ("window_seconds: 0", "0 is too small (expected at least 1)"),
        ("window_seconds: 90000", "90000 is too large (expected at most 86400)"),
        ("max_failures_per_address: many", "expected an integer, got a string"),
        ("max_failures: 5", "unknown key 'max_failures' in authserver.brute_force"),
    ],
)
def test_brute_force_mistakes_are_errors_at_their_line(
    tmp_path: Path, entry: str, message: str
) -> None:
    err = error_of(write(tmp_path, AUTHSERVER + f"  brute_force:\n    {entry}\n"))
    assert err.line == 14 and message in str(err)  # the line of the entry


def test_server_edges_default_to_documented_values(tmp_path: Path) -> None:
    server = load_config(write(tmp_path, BASE)).server
    assert (server.timeouts.header, server.timeouts.body, server.timeouts.keepalive) == (
        10.0,
        30.0,
        15.0,
    )
    assert server.max_connections == 1000 and server.shutdown_grace_seconds == 25.0
    assert server.admin is None


def test_server_edges_are_read_from_the_server_section(tmp_path: Path) -> None:
    text = BASE + (
        "server:\n"
        "  port: 8443\n"
        "  timeouts: {header: 2, body: 5.5, keepalive: 7}\n"
        "  max_connections: 200\n"
        "  shutdown_grace_seconds: 40\n"
        "  admin: {host: 0.0.0.0, port: 9191}\n"
    )
    server = load_config(write(tmp_path, text)).server
    assert (server.timeouts.header, server.timeouts.body, server.timeouts.keepalive) == (
        2.0,
        5.5,
        7.0,
    )
    assert server.max_connections == 200 and server.shutdown_grace_seconds == 40.0
    assert server.admin is not None and (server.admin.host, server.admin.port) == ("0.0.0.0", 9191)


def test_unknown_server_timeout_is_an_error_at_its_line(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, BASE + "server:\n  timeouts:\n    headers: 5\n"))
    assert err.line == 13 and "unknown key 'headers' in server.timeouts" in err.message


def test_zero_header_timeout_is_an_error(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, BASE + "server:\n  timeouts: {header: 0}\n"))
    assert err.line == 12 and "too small" in err.message


def test_admin_listener_on_the_public_port_is_an_error(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, BASE + "server:\n  port: 8080\n  admin: {port: 8080}\n"))
    assert err.line == 13 and "server.admin.port 8080 is the public port" in err.message


def test_routes_validate_against_the_bundled_schema_unless_told_otherwise(tmp_path: Path) -> None:
    (route,) = load_config(write(tmp_path, BASE)).routes
    assert (route.schema, route.schema_validation) == (None, True)  # None: the bundled one


def test_schema_none_turns_validation_off(tmp_path: Path) -> None:
    text = BASE.replace(
        "    policies: [policies]\n", "    policies: [policies]\n    schema: none\n"
    )
    (route,) = load_config(write(tmp_path, text)).routes
    assert (route.schema, route.schema_validation) == (None, False)


def test_a_missing_schema_file_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = BASE.replace(
        "    policies: [policies]\n", "    policies: [policies]\n    schema: nowhere.graphql\n"
    )
    err = error_of(write(tmp_path, text))
    assert err.line == 7 and "nowhere.graphql" in str(err)


def test_every_mistake_is_reported_at_once_each_at_its_line(tmp_path: Path) -> None:
    text = BASE.replace("    policies: [policies]", "    policies: [policies]\n    timeout: 5")
    path = write(tmp_path, text + "server:\n  port: eighty\nobservability: {log_format: xml}\n")
    err = error_of(path)
    assert [(i.line, i.message) for i in err.issues] == [
        (7, "unknown key 'timeout' in route"),
        (13, "expected an integer, got a string"),
        (14, "unknown log_format 'xml'"),
    ]
    assert str(err).splitlines()[0] == "3 errors in configuration:"
    assert str(err).splitlines()[3] == (
        f"{path}:14:29: unknown log_format 'xml' (expected one of json, console)"
    )


def test_a_mistyped_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, BASE + "server:\n  max_conections: 10\n"))
    assert (err.line, err.col) == (12, 3)
    assert err.hint is not None and err.hint.startswith("did you mean 'max_connections'? ")


def test_rules_between_sections_are_reported_together(tmp_path: Path) -> None:
    route = BASE.split("routes:\n")[1].split("tokens:")[0]
    text = BASE.replace("tokens:", route + "tokens:")
    err = error_of(write(tmp_path, text + "server:\n  port: 8080\n  admin: {port: 8080}\n"))
    assert [(i.line, i.message) for i in err.issues] == [
        (7, "duplicate route path '/deelnemers/uzovi/5151/graphql'"),
        (17, "server.admin.port 8080 is the public port"),
    ]


@pytest.mark.parametrize(
    "path", ["/auth/x/graphql", "/catalogus/notificatietypen", "/metrics", "/access/v1/evaluation"]
)
def test_a_route_on_a_gateway_endpoint_is_refused(tmp_path: Path, path: str) -> None:
    err = error_of(write(tmp_path, BASE.replace("/deelnemers/uzovi/5151/graphql", path)))
    assert err.line == 3 and "collides with a gateway endpoint" in err.message


def test_subscription_names_default_to_the_iwlz_schema_and_are_overridden_key_by_key(
    tmp_path: Path,
) -> None:
    names = load_config(write(tmp_path, BASE)).abonnementen
    assert (names.create.field, names.create.answer_id) == ("createAbonnement", "abonnementId")
    assert names.key_arguments == {
        "deleteAbonnement": "abonnementId",
        "zendNotificatie": "notificatieInput.ontvangerKenmerk",
    }
    path = write(tmp_path, BASE + "abonnementen:\n  delete: {field: stopAbonnement}\n")
    names = load_config(path).abonnementen
    assert (names.delete.field, names.delete.id, names.delete.reason) == (
        "stopAbonnement",
        "abonnementId",
        "reden",
    )
    assert names.create.field == "createAbonnement"


def test_bad_subscription_names_are_errors_at_their_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE
        + "abonnementen:\n"
        + "  create: {field: create-abonnement, type: abonnementInput..type}\n"
        + "  delete: {field: deleteAbonnement, reasn: reden}\n"
        + "  kenmerk: {zendNotificatie: 5}\n",
    )
    lines = str(error_of(path)).splitlines()
    assert lines[1] == f"{path}:12:19: not a GraphQL field name: 'create-abonnement'" + (
        " (e.g. createAbonnement)"
    )
    assert lines[2].startswith(f"{path}:12:44: not a dotted argument path: 'abonnementInput..type'")
    assert lines[3].startswith(
        f"{path}:13:37: unknown key 'reasn' in abonnementen.delete (did you mean 'reason'?"
    )
    assert lines[4].startswith(f"{path}:14:30: not a dotted argument path: '5'")


def test_one_mutation_cannot_both_subscribe_and_unsubscribe(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "abonnementen:\n  delete: {field: createAbonnement}\n")
    assert str(error_of(path)).startswith(
        f"{path}:12:3: create and delete name the same mutation 'createAbonnement'"
    )
