"""``policy check`` catches what breaks traffic: catalogue schemas, the set's own test cases,
a single file resolved to its set, and YAML syntax errors at the line of the mistake.

Every test runs the command on real files: a copy of ``policies/iwlz`` edited as a security
officer would, or small files written to tmp_path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.policy import PolicyLoadError, PolicyStore
from tests.fixtures.policy import IWLZ, POLICY_HEAD, REPO, Writer

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def iwlz(tmp_path: Path) -> Path:
    """A private copy of the shipped iWlz policy set."""
    target = tmp_path / "iwlz"
    shutil.copytree(IWLZ, target)
    return target


def edit(file: Path, old: str, new: str, count: int = 1) -> int:
    """Replace *old* by *new* in *file*; the 1-based line of the first replacement."""
    text = file.read_text(encoding="utf-8")
    assert old in text, old
    file.write_text(text.replace(old, new, count), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def check(capsys: Capture, *args: str | Path) -> tuple[int, list[str]]:
    code = main(["policy", "check", *map(str, args)])
    return code, capsys.readouterr().out.splitlines()


# ------------------------------------------------------------------ catalogue schemas
def test_a_misspelt_column_is_an_error_at_the_key_with_did_you_mean(
    iwlz: Path, capsys: Capture
) -> None:
    catalogue = iwlz / "catalogus" / "notificatietypen.yaml"
    line = edit(
        catalogue,
        "afzender: Onderneming, ontvanger: UZOVI",
        "afzender: Onderneming, ontavnger: UZOVI",
    )
    code, out = check(capsys, "--no-tests", iwlz)
    assert code == 1
    col = catalogue.read_text().splitlines()[line - 1].index("ontavnger") + 1
    assert out == [
        f"{catalogue}:{line}:{col}: unknown column 'ontavnger' in table "
        "'notificatietypen' (did you mean 'ontvanger'? columns: code, register, "
        "afzender, ontvanger, notificatie_type, bronhouder, id_type_abonnee, event, "
        "object_id_type, omschrijving)",
        "tests: not run (the policy set does not load)",
    ]


def test_a_wrong_case_value_is_an_error_naming_the_allowed_values(
    iwlz: Path, capsys: Capture
) -> None:
    catalogue = iwlz / "catalogus" / "notificatietypen.yaml"
    line = edit(catalogue, "afzender: Onderneming", "afzender: onderneming")
    code, out = check(capsys, "--no-tests", iwlz)
    assert code == 1
    col = catalogue.read_text().splitlines()[line - 1].index("onderneming") + 1
    assert out[0] == (
        f"{catalogue}:{line}:{col}: 'onderneming' is not an allowed 'afzender' "
        "of table 'notificatietypen' (from instanties.instantie_type) (did you "
        "mean 'Onderneming'? allowed: Onderneming, Zorgaanbieder, Zorgkantoor)"
    )


def test_a_typo_in_a_list_entry_that_names_another_tables_values(
    iwlz: Path, capsys: Capture
) -> None:
    catalogue = iwlz / "catalogus" / "meldingen.yaml"
    line = edit(catalogue, "values: [AGB, UZOVI]", "values: [AGB, UZOIV]")
    code, out = check(capsys, "--no-tests", iwlz)
    assert code == 1
    col = catalogue.read_text().splitlines()[line - 1].index("UZOIV") + 1
    assert out[0] == (
        f"{catalogue}:{line}:{col}: 'UZOIV' in list 'melding_afzender_id_types' "
        "is not in identificatietypen.id_type (did you mean 'UZOVI'? allowed: "
        "AGB, KVK, OIN, UZOVI)"
    )


def test_an_overlay_value_is_checked_in_its_environment(iwlz: Path, capsys: Capture) -> None:
    overlay = iwlz / "omgevingen" / "productie.yaml"
    line = edit(
        overlay,
        "{event_type: MUTATIE_CLIENT, id_type: KVK",
        "{event_type: MUTATIE_CLIENT, id_type: kvk",
    )
    code, out = check(capsys, "--no-tests", iwlz)
    assert code == 1
    assert out[0].startswith(f"{overlay}:{line}:")
    assert "[productie] 'kvk' is not an allowed 'id_type' of table 'gebonden_ontvangers'" in out[0]
    assert "did you mean 'KVK'?" in out[0]


def test_a_missing_required_column_and_an_unknown_values_from(
    write: Writer, capsys: Capture
) -> None:
    write(
        "set/p.yaml",
        """
        policy: p
        applies_to: {graphql: {operation: mutation, field: zendNotificatie}}
        checks:
          - id: a
            require: {row: t, where: {a: {fact: args.a}}}
    """,
    )
    data = write(
        "set/d.yaml",
        """
        catalogue: d
        tables:
          t:
            columns:
              a: {values_from: soortn}
              b: {values: [x, y]}
            rows:
              - {a: x}
        lists:
          soorten: [x]
    """,
    )
    code, out = check(capsys, "--no-tests", data.parent)
    assert code == 1
    assert out == [
        f"{data}:5:24: values_from 'soortn' names no table column or list (did you mean "
        "'soorten'? write table.column (e.g. t.a) or a list name)",
        f"{data}:8:9: row of table 't' has no 'b' (every row needs: a, b)",
        "tests: not run (the policy set does not load)",
    ]


def test_the_running_gateways_reload_refuses_a_catalogue_typo(iwlz: Path) -> None:
    store = PolicyStore([iwlz])
    good = store.version
    edit(iwlz / "catalogus" / "instanties.yaml", "id_type: KVK}", "id_type: KvK}")
    assert store.reload() is False
    assert store.version == good


# ------------------------------------------------------------------ the set's test cases
def test_check_runs_the_sets_test_cases(iwlz: Path, capsys: Capture) -> None:
    code, out = check(capsys, iwlz)
    assert code == 0
    assert out[0].startswith("ok: ")
    files = len(list(iwlz.rglob("*.test.yaml")))
    assert out[1].startswith("tests: ") and out[1].endswith(f" passed, 0 failed ({files} files)")


def test_check_fails_on_a_failing_test_case(iwlz: Path, capsys: Capture) -> None:
    # A policy change the catalogue accepts but the set's own tests do not.
    edit(iwlz / "catalogus" / "meldingen.yaml", "values: [AGB, UZOVI]", "values: [UZOVI]")
    code, out = check(capsys, iwlz)
    assert code == 1
    assert out[0].startswith("ok: ")
    assert any(line.startswith(f"FAIL {iwlz / 'melding.test.yaml'}:") for line in out)
    assert out[-1].startswith("tests: ") and " 0 failed" not in out[-1]


def test_check_says_when_it_did_not_run_the_tests(iwlz: Path, capsys: Capture) -> None:
    code, out = check(capsys, "--no-tests", iwlz)
    assert code == 0
    assert out[-1] == "tests: not run (--no-tests)"


# ------------------------------------------------------------------ one file
def test_check_file_checks_the_set_of_its_folder(iwlz: Path, capsys: Capture) -> None:
    code, out = check(capsys, "--no-tests", iwlz / "melding.yaml")
    assert code == 0
    assert out[0] == f"{iwlz / 'melding.yaml'}: checking its policy set {iwlz}"


def test_check_file_in_the_catalogue_folder_checks_the_set_above(
    iwlz: Path, capsys: Capture
) -> None:
    file = iwlz / "catalogus" / "instanties.yaml"
    code, out = check(capsys, "--no-tests", file)
    assert code == 0
    assert out[0] == f"{file}: checking its policy set {iwlz}"
    _, of_the_folder = check(capsys, "--no-tests", iwlz)
    assert out[1] == of_the_folder[0] and out[1].startswith("ok: ")  # the same set


def test_check_file_without_its_set_says_in_one_line_what_to_pass(
    tmp_path: Path, capsys: Capture
) -> None:
    lone = tmp_path / "melding.yaml"
    shutil.copy(IWLZ / "melding.yaml", lone)
    code, out = check(capsys, lone)
    assert code == 1
    assert out == [
        f"{lone}: no catalogue in its folder or the one above it, so its lists and "
        "tables cannot be checked: pass the folder of its policy set",
        "tests: not run (the policy set does not load)",
    ]


def test_check_as_a_command_from_the_repository(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "policy",
            "check",
            "policies/iwlz/omgevingen/productie.yaml",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "policies/iwlz/omgevingen/productie.yaml: checking its policy set policies/iwlz"
    )
    files = len(list((REPO / "policies" / "iwlz").rglob("*.test.yaml")))
    assert lines[-1].endswith(f" passed, 0 failed ({files} files)")


# ------------------------------------------------------------------ YAML syntax errors
GOOD = (
    POLICY_HEAD
    + """\
  - id: a
    require: {fact: args.x, present: true}
    reason: x is missing
refusal:
  status: 400
"""
)


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("    reason: x", "     reason: x", 9, "bad indentation"),
        ("    field: zendNotificatie", "     field: zendNotificatie", 5, "unexpected ':'"),
        ("    reason: x is missing", '    reason: "x is missing', 9, "unclosed quote"),
        ("    operation: mutation", "\toperation: mutation", 4, "tab character"),
        ("  graphql:", "  graphql", 3, "missing ':' after a key"),
        (
            "    require: {fact: args.x, present: true}",
            "    require: {fact: args.x, present: true",
            8,
            "unclosed [ or {",
        ),
    ],
)
def test_a_yaml_mistake_is_reported_once_at_its_line(
    write: Writer, capsys: Capture, old: str, new: str, line: int, message: str
) -> None:
    policy = write("set/p.yaml", GOOD.replace(old, new))
    # A catalogue the policy set also has: its YAML mistake must not bring knock-on errors
    # ("unknown list") in the policy that uses it.
    write("set/d.yaml", "catalogue: d\nlists:\n  l: [x]\n")
    code, out = check(capsys, policy.parent)
    assert code == 1
    assert len(out) == 2, out
    assert out[0].startswith(f"{policy}:{line}:")
    assert f": invalid YAML: {message} (" in out[0]


def test_a_broken_catalogue_brings_no_knock_on_errors(write: Writer, capsys: Capture) -> None:
    write("set/p.yaml", GOOD.replace("present: true", "in: soorten"))
    data = write("set/d.yaml", "catalogue: d\nlists:\n  soorten: [x\n")
    code, out = check(capsys, data.parent)
    assert code == 1
    assert out == [
        f"{data}:3:12: invalid YAML: unclosed [ or {{ (close it with ] or }} on this line)",
        "tests: not run (the policy set does not load)",
    ]


def test_a_set_whose_tests_fail_does_not_start_with_require_tests(iwlz: Path) -> None:
    edit(iwlz / "catalogus" / "meldingen.yaml", "values: [AGB, UZOVI]", "values: [UZOVI]")
    PolicyStore([iwlz])  # loads: the catalogue is well-formed
    with pytest.raises(PolicyLoadError) as info:
        PolicyStore([iwlz], require_tests=True)
    assert any(
        e.startswith(f"{iwlz / 'melding.test.yaml'}:") and "fails" in e for e in info.value.errors
    )
