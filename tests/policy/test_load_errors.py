"""Every kind of load error is reported as file:line:col: message (hint), all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policy import PolicyLoadError, load_policy_set
from tests.fixtures.policy import POLICY_HEAD, Writer

HEAD = POLICY_HEAD
A = "  - id: a\n"
DATA = """\
catalogue: data
lists:
  soorten: [UZOVI, AGB]
tables:
  instanties:
    - {instantie_type: Zorgkantoor, id_type: UZOVI}
"""


def errors_of(paths: list[Path], environment: str | None = None) -> list[str]:
    with pytest.raises(PolicyLoadError) as info:
        load_policy_set(paths, environment=environment)
    return info.value.errors


def one_error(write: Writer, policy: str, data: str = DATA) -> str:
    file = write("set/policy.yaml", policy)
    write("set/data.yaml", data)
    errors = errors_of([file.parent])
    assert len(errors) == 1, errors
    return errors[0].replace(str(file), "policy.yaml")


def test_invalid_yaml_has_position(write: Writer) -> None:
    error = one_error(write, HEAD + A + "    require: {fact: args.x, present: true\n")
    # At the unclosed brace (line 8), not where PyYAML gave up (the end of the file).
    assert error == (
        "policy.yaml:8:14: invalid YAML: unclosed [ or { (close it with ] or } on this line)"
    )


def test_unknown_key_points_at_the_key_with_a_suggestion(write: Writer) -> None:
    file = write("set/policy.yaml", HEAD + A + "    requires: {fact: args.x, present: true}\n")
    write("set/data.yaml", DATA)
    errors = errors_of([file.parent])
    assert errors[1].startswith(f"{file}:8:5: unknown key 'requires' in checks.0")
    assert "did you mean 'require'?" in errors[1]
    assert errors[0].startswith(f"{file}:7:5: missing required key 'require'")


def test_missing_required_key(write: Writer) -> None:
    error = one_error(write, HEAD + A + "    reason: x\n")
    assert error.startswith("policy.yaml:7:5: missing required key 'require'")
    assert "(add 'require:')" in error


def test_wrong_type(write: Writer) -> None:
    error = one_error(write, HEAD + A + "    require: {fact: args.x, present: yes please}\n")
    assert error.startswith(
        "policy.yaml:8:38: checks.0.require.present: expected true or false, got a string"
    )


def test_unknown_enum_value(write: Writer) -> None:
    error = one_error(
        write,
        HEAD.replace("operation: mutation", "operation: mutatie")
        + "  - id: a\n    require: {fact: args.x, present: true}\n",
    )
    assert error.startswith("policy.yaml:4:16: ")
    assert "expected one of" in error


def test_duplicate_yaml_key(write: Writer) -> None:
    error = one_error(write, HEAD + A + "    id: b\n    require: {fact: args.x, present: true}\n")
    assert error.startswith("policy.yaml:8:5: duplicate key 'id'")


def test_unknown_list_name(write: Writer) -> None:
    error = one_error(write, HEAD + A + "    require: {fact: args.x, in: soort}\n")
    assert error.startswith("policy.yaml:8:33: unknown list 'soort'")
    assert "did you mean 'soorten'?" in error


def test_unknown_table_and_column(write: Writer) -> None:
    error = one_error(write, HEAD + A + "    require: {row: instantie, where: {id_type: A}}\n")
    assert error.startswith("policy.yaml:8:20: unknown table 'instantie'")
    error = one_error(write, HEAD + A + "    require: {row: instanties, where: {idtype: A}}\n")
    assert error.startswith("policy.yaml:8:40: table 'instanties' has no column 'idtype'")
    assert "did you mean 'id_type'?" in error


def test_unknown_fact(write: Writer) -> None:
    error = one_error(write, HEAD + A + "    require: {fact: token.identifer, present: true}\n")
    assert error.startswith("policy.yaml:8:21: unknown fact 'token.identifer'")
    assert "token.identifier" in error


def test_item_outside_every(write: Writer) -> None:
    error = one_error(write, HEAD + A + "    require: {fact: item.subject, present: true}\n")
    assert "is only known inside every: or some:" in error


def test_fact_condition_with_two_operators(write: Writer) -> None:
    error = one_error(write, HEAD + A + "    require: {fact: args.x, present: true, equals: A}\n")
    assert error.startswith("policy.yaml:8:14: a fact condition needs exactly one operator")


def test_duplicate_check_id(write: Writer) -> None:
    check = "  - id: a\n    require: {fact: args.x, present: true}\n"
    error = one_error(write, HEAD + check + check)
    assert error.startswith("policy.yaml:9:9: duplicate check id 'a'")
    assert "first used at" in error


def test_duplicate_policy_id_and_unreachable_policy(write: Writer) -> None:
    check = "  - id: a\n    require: {fact: args.x, present: true}\n"
    write("set/a.yaml", HEAD + check)
    write("set/b.yaml", HEAD.replace("policy: p", "policy: q") + check)
    write("set/data.yaml", DATA)
    errors = errors_of([write("set/c.yaml", HEAD + check).parent])
    folder = write("set/data.yaml", DATA).parent
    assert errors == [
        f"{folder}/b.yaml:2:1: policy 'q' is unreachable for mutation zendNotificatie: 'p' "
        f"({folder}/a.yaml:1) already applies to it (one policy per operation: merge the "
        "checks into that policy)",
        f"{folder}/c.yaml:1:9: duplicate policy id 'p' (first used at {folder}/a.yaml:1)",
    ]


def test_check_that_can_never_pass(write: Writer) -> None:
    error = one_error(write, HEAD + A + "    require: {fact: args.x, in: []}\n")
    assert error.startswith("policy.yaml:8:14: check 'a' can never pass")


def test_check_that_is_unreachable(write: Writer) -> None:
    error = one_error(
        write,
        HEAD + A + "    when: {fact: args.n, count: {min: 3, max: 1}}\n"
        "    require: {fact: args.x, present: true}\n",
    )
    assert error.startswith("policy.yaml:8:11: check 'a' is unreachable")


def test_bad_regular_expression(write: Writer) -> None:
    error = one_error(write, HEAD + A + "    require: {fact: args.x, pattern: '[0-9'}\n")
    assert "invalid regular expression" in error


def test_unknown_message_placeholder(write: Writer) -> None:
    error = one_error(
        write,
        HEAD + A + "    require: {fact: args.x, present: true}\n"
        "    reason: r\n    message: '{Operatie}: {reason}'\n",
    )
    assert error.startswith("policy.yaml:10:14: unknown placeholder {Operatie}")


def test_duplicate_data_name(write: Writer) -> None:
    write("set/other.yaml", "catalogue: other\nlists:\n  soorten: [X]\n")
    error = one_error(write, HEAD + A + "    require: {fact: args.x, in: soorten}\n")
    assert "other.yaml:3:3: duplicate data name 'soorten'" in error


def test_overlay_of_unknown_list_and_unknown_environment(write: Writer) -> None:
    write("set/policy.yaml", HEAD + A + "    require: {fact: args.x, in: soorten}\n")
    write("set/data.yaml", DATA)
    overlay = write("set/o.yaml", "overlay: productie\nlists:\n  soortn: {add: [X]}\n")
    errors = errors_of([overlay.parent])
    assert errors == [
        f"{overlay}:3:3: overlay changes unknown list 'soortn' "
        "(did you mean 'soorten'? known lists: soorten)"
    ]
    overlay.write_text("overlay: productie\n")
    errors = errors_of([overlay.parent], environment="prod")
    assert len(errors) == 1
    assert "no overlay for environment 'prod' (environments in this set: productie)" in errors[0]


def test_file_of_no_known_kind(write: Writer) -> None:
    error = one_error(write, "naam: iets\n")
    assert (
        error == "policy.yaml:1:1: not a policy, catalogue or overlay file "
        "(start the file with policy:, catalogue: or overlay:)"
    )


def test_empty_file_and_missing_path(write: Writer, tmp_path: Path) -> None:
    error = one_error(write, "")
    assert error.startswith("policy.yaml:1:1: file is empty")
    errors = errors_of([tmp_path / "nergens"])
    assert errors == [
        f"{tmp_path / 'nergens'}:0:0: no such file or directory "
        "(check the policy path in the configuration)"
    ]


def test_every_error_of_every_file_is_reported_at_once(write: Writer) -> None:
    write("set/a.yaml", HEAD + A + "    require: {fact: args.x, in: nope}\n")
    write(
        "set/b.yaml",
        HEAD.replace("policy: p", "policy: q").replace("zendNotificatie", "z")
        + "  - id: a\n    require: {fact: tokn.x, present: true}\n",
    )
    file = write("set/data.yaml", DATA)
    errors = errors_of([file.parent])
    assert len(errors) == 2
    assert "a.yaml:8:33: unknown list 'nope'" in errors[0]
    assert "b.yaml:8:21: checks.0.require.fact: 'tokn.x' is not valid (token.*" in errors[1]


def test_test_files_are_not_loaded_as_policies(write: Writer) -> None:
    write("set/policy.yaml", HEAD + A + "    require: {fact: args.x, present: true}\n")
    write("set/policy.test.yaml", "tests: t\ncases: []\n")
    policy_set = load_policy_set([write("set/data.yaml", DATA).parent])
    assert [p.name for p in policy_set.files] == ["data.yaml", "policy.yaml"]
