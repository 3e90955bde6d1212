"""GitHub Actions workflows (.github/workflows/) and the CI/CD template (include/infra/cicd.cfn.json),
offline: schema-valid, zizmor-clean, what runs when (push → lint and tests; v* tag → package, change
sets, MWAA upload), AWS through OIDC only, and no model deployment. The deploy and upload steps' scripts
run here against a stub ``aws`` that records its calls."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.constants import ACCOUNT_ID, REGION, ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
CI, RELEASE = WORKFLOWS / "ci.yml", WORKFLOWS / "release.yml"
CICD_TEMPLATE = ROOT / "include" / "infra" / "cicd.cfn.json"
BIN = Path(sys.executable).parent
STACKS = ["lake", "roles", "glue", "ml", "warehouse", "events"]  # docs/aws.md's deployment order
MWAA_KEYS = ["plugins.zip", "requirements.txt", "startup.sh"]
# API calls that deploy or approve a model: the registry's approval flow does them, never a workflow.
MODEL_DEPLOYMENT = re.compile(
    r"(create|update|delete)[-_]?endpoint|update[-_]?model[-_]?package|create[-_]?model\b", re.IGNORECASE
)


def load(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def steps(path: Path, job: str) -> list[dict[str, Any]]:
    return load(path)["jobs"][job]["steps"]


def step(path: Path, job: str, name: str) -> dict[str, Any]:
    (found,) = [s for s in steps(path, job) if s.get("name") == name]
    return found


def uses(entry: dict[str, Any]) -> str:
    return entry.get("uses", "").split("@")[0]


def all_steps() -> list[dict[str, Any]]:
    return [
        s
        for path in sorted(WORKFLOWS.glob("*.yml"))
        for job in load(path)["jobs"].values()
        for s in job.get("steps", [])
    ]


# --- schema and linter -----------------------------------------------------------------------------------


def schema_errors(path: Path) -> str:
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )
    return "" if done.returncode == 0 else done.stdout + done.stderr


def zizmor_findings(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--format", "json", "--no-progress", str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode in (0, *range(10, 15)), done.stderr[-2000:]  # 1x: findings of severity x
    return json.loads(done.stdout)


def test_the_workflows_are_the_expected_ones() -> None:
    assert sorted(p.name for p in WORKFLOWS.iterdir()) == ["ci.yml", "release.yml"]


@pytest.mark.parametrize("path", [CI, RELEASE], ids=lambda p: p.name)
def test_workflow_matches_the_github_workflow_schema(path: Path) -> None:
    assert schema_errors(path) == ""


def test_the_schema_check_refuses_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(CI.read_text().replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04"))
    assert "runs-on" in schema_errors(broken)


@pytest.mark.parametrize("path", [CI, RELEASE], ids=lambda p: p.name)
def test_zizmor_finds_nothing(path: Path) -> None:
    assert [f["ident"] for f in zizmor_findings(path)] == []


def test_zizmor_finds_an_injected_expression(tmp_path: Path) -> None:
    injected = tmp_path / "injected.yml"
    text = CI.read_text().replace("run: make lint", "run: echo ${{ github.event.pull_request.title }}")
    injected.write_text(text)
    assert "template-injection" in {f["ident"] for f in zizmor_findings(injected)}


def test_third_party_actions_are_pinned_by_full_sha_with_their_version() -> None:
    pins: dict[str, set[str]] = {}
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for line in path.read_text().splitlines():
            found = re.search(r"uses: (\S+)(.*)", line)
            if not found or found[1].startswith("./"):
                continue
            pinned = re.fullmatch(r"([\w.-]+/[\w.-]+)@([0-9a-f]{40})", found[1])
            assert pinned, f"{path.name}: {found[1]} is not pinned by commit SHA"
            assert re.fullmatch(r" # v\d+\.\d+\.\d+", found[2]), f"{path.name}: {line.strip()} has no version"
            pins.setdefault(pinned[1], set()).add(found[1] + found[2])
    assert {action: len(versions) for action, versions in pins.items()} == dict.fromkeys(pins, 1)
    assert set(pins) == {
        "actions/checkout",
        "actions/setup-java",
        "actions/setup-python",
        "actions/cache",
        "aws-actions/configure-aws-credentials",
    }


# --- CI: every push and pull request ---------------------------------------------------------------------


def test_ci_runs_on_every_branch_push_and_pull_request_and_when_release_calls_it() -> None:
    on = load(CI)["on"]
    assert on["push"] == {"branches": ["**"]}
    assert "pull_request" in on and "workflow_call" in on
    assert load(CI)["permissions"] == {"contents": "read"}


def test_ci_lints_and_runs_the_ci_entry_point_which_runs_make_test() -> None:
    runs = [s.get("run") for s in steps(CI, "test")]
    assert runs.index("make lint") < runs.index("bash .ci/run")
    entry = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", entry, re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lint: venv\n\t\$\(BIN\)/ruff check \.", makefile, re.MULTILINE)


def test_ci_sets_up_java_17_and_python_311_before_building() -> None:
    names = [uses(s) for s in steps(CI, "test")]
    java = steps(CI, "test")[names.index("actions/setup-java")]["with"]
    python = steps(CI, "test")[names.index("actions/setup-python")]["with"]
    assert (java["java-version"], python["python-version"]) == ("17", "3.11")
    assert names.index("actions/setup-java") < names.index("actions/cache")
    assert max(names.index("actions/setup-python"), names.index("actions/cache")) < [
        s.get("run") for s in steps(CI, "test")
    ].index("make lint")


def test_ci_caches_pip_uv_and_the_venv_keyed_on_the_requirements_but_not_for_a_tag() -> None:
    cache = step(CI, "test", "Cache pip, uv and .venv")
    assert set(cache["with"]["path"].split()) == {"~/.cache/pip", "~/.cache/uv", ".venv"}
    key = cache["with"]["key"]
    assert "hashFiles('requirements*.txt'" in key and "steps.python.outputs.python-version" in key
    stamps = re.findall(r"^(\$\(\w+\)):", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert stamps == ["$(STAMP)", "$(FRAMEWORKS)", "$(CHECKOV)"]  # the stamps the restore step touches
    touched = step(CI, "test", "Mark the restored venv as current")
    assert touched["if"] == "${{ steps.cache.outputs.cache-hit == 'true' }}"
    assert touched["run"].split()[:2] == ["touch", "-c"]
    assert cache["if"] == "${{ !startsWith(github.ref, 'refs/tags/') }}"  # a release builds from scratch


# --- release: a v* tag ------------------------------------------------------------------------------------


def test_release_runs_on_v_tags_after_the_ci_workflow() -> None:
    release = load(RELEASE)
    assert release["on"] == {"push": {"tags": ["v*"]}}
    assert release["jobs"]["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert release["jobs"]["deploy"]["needs"] == "ci"
    assert release["concurrency"]["cancel-in-progress"] is False  # never stop a deployment half-way


def test_release_assumes_the_role_then_deploys_the_stacks_then_packages_then_updates_mwaa() -> None:
    order = [s.get("name", uses(s)) for s in steps(RELEASE, "deploy")]
    assert order == [
        "Check the deployment settings",
        "actions/checkout",
        "Python 3.11",
        "Assume the deploy role (OIDC)",
        "Deploy the CloudFormation stacks",
        "Build the MWAA package",
        "Upload to the MWAA bucket and update the environment",
    ]
    assert (
        'make package ARGS="$args"' in step(RELEASE, "deploy", "Build the MWAA package")["run"].splitlines()
    )


def test_aws_access_is_an_oidc_assumed_role_and_never_a_stored_key() -> None:
    release = load(RELEASE)
    assert release["permissions"] == {}
    assert release["jobs"]["deploy"]["permissions"] == {"id-token": "write", "contents": "read"}
    assert release["jobs"]["ci"]["permissions"] == {"contents": "read"}
    credentials = step(RELEASE, "deploy", "Assume the deploy role (OIDC)")
    assert uses(credentials) == "aws-actions/configure-aws-credentials"
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    for path in sorted(WORKFLOWS.glob("*.yml")):
        text = path.read_text().lower()
        for key in (
            "aws-access-key-id",
            "aws-secret-access-key",
            "aws_access_key_id",
            "aws_secret_access_key",
        ):
            assert key not in text, f"{path.name} mentions {key}"
    assert "id-token" not in CI.read_text()


def test_deployment_settings_come_from_github_variables_and_secrets_only() -> None:
    env = load(RELEASE)["jobs"]["deploy"]["env"]
    for name, value in env.items():
        assert re.fullmatch(r"\$\{\{ (vars\.[A-Z_]+|github\.ref_name) \}\}", value), name
    for path in sorted(WORKFLOWS.glob("*.yml")):
        text = path.read_text()
        assert not re.search(r"arn:aws|\b\d{12}\b|\b[a-z]{2}-[a-z]+-\d\b", text), path.name
    secrets = {e for s in all_steps() for e in s.get("env", {}).values() if "secrets." in e}
    assert secrets == {"${{ secrets.SAGELAKE_WEBHOOK_API_KEY }}"}
    for s in all_steps():  # scripts read the environment; no ${{ }} is expanded into a script
        assert "${{" not in s.get("run", "")


def test_the_settings_check_names_every_missing_variable() -> None:
    check = step(RELEASE, "deploy", "Check the deployment settings")["run"]
    env = {**settings_env(), "MWAA_BUCKET": "", "AWS_REGION": ""}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", check], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "AWS_REGION MWAA_BUCKET" in done.stdout
    done = subprocess.run(
        ["bash", "-c", check], env={**settings_env(), "WAREHOUSE": "yes"}, capture_output=True
    )
    assert done.returncode == 1
    assert subprocess.run(["bash", "-c", check], env=settings_env()).returncode == 0


def test_no_workflow_step_deploys_or_approves_a_model() -> None:
    for s in all_steps():
        assert not MODEL_DEPLOYMENT.search(json.dumps(s)), s.get("name", s.get("uses"))
        assert "sagemaker" not in json.dumps(s).lower(), s.get("name", s.get("uses"))
    for statement in cicd_statements("DeployRole") + cicd_statements("CloudFormationRole"):
        for action in as_list(statement["Action"]):
            assert not action.startswith("sagemaker:") or "ModelPackageGroup" in action or "Tags" in action


@pytest.mark.parametrize(
    "command",
    [
        "aws sagemaker create-endpoint --endpoint-name x --endpoint-config-name y",
        "aws sagemaker update-endpoint --endpoint-name x --endpoint-config-name y",
        "aws sagemaker update-model-package --model-package-arn a --model-approval-status Approved",
        "python -c \"boto3.client('sagemaker').update_model_package(ModelApprovalStatus='Approved')\"",
    ],
)
def test_the_model_deployment_check_catches_such_a_step(command: str) -> None:
    assert MODEL_DEPLOYMENT.search(json.dumps({"run": command}))


# --- the deploy and upload scripts, against a stub aws ------------------------------------------------------

STUB_AWS = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["AWS_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
def arg(name):
    return args[args.index(name) + 1]
command = args[:2]
if command == ["cloudformation", "describe-stacks"] and "OutputKey==" in arg("--query"):
    key = arg("--query").split("'")[1]
    print("" if key == "SagelakeLakeKmsKeyId" else f"{{arg('--stack-name')}}.{{key}}")
elif command == ["cloudformation", "describe-stacks"]:  # every output, as the stack's template declares
    stack = arg("--stack-name")
    outputs = json.load(open(os.environ["AWS_TEMPLATES"]))[stack.rsplit("-", 1)[1]]
    for key, description in outputs.items():
        print(f"{{key}}\t{{description}}\t{{stack}}.{{key}}")
elif command == ["cloudformation", "deploy"] and arg("--stack-name") == os.environ.get("AWS_FAIL_STACK"):
    sys.exit(255)
elif command == ["s3api", "put-object"]:
    print("None" if os.environ.get("AWS_UNVERSIONED") else "ver-" + arg("--key"))
elif command == ["mwaa", "get-environment"]:
    statuses = os.environ.get("AWS_MWAA_STATUSES", "AVAILABLE").split(",")
    polls = sum(1 for line in open(os.environ["AWS_LOG"]) if "get-environment" in line)
    print(statuses[min(polls, len(statuses)) - 1])
"""


STUB_MAKE = """\
#!{python}
import json, os, sys
with open(os.environ["AWS_LOG"], "a") as log:
    log.write(json.dumps(["make", *sys.argv[1:]]) + "\\n")
"""


def template_outputs(stack: str) -> dict[str, str]:
    """Output → description of the template a stack (``lake`` … ``events``) is deployed from."""
    path = ROOT / "include" / ("events/eventbridge" if stack == "events" else f"infra/{stack}")
    tpl = json.loads(path.with_suffix(".cfn.json").read_text())
    return {name: output["Description"] for name, output in tpl["Outputs"].items()}


def settings_env(**overrides: str) -> dict[str, str]:
    """The deploy job's environment with every variable set (as GitHub would from vars.*)."""
    env = {
        "PATH": os.environ["PATH"],
        "AWS_REGION": REGION,
        "AWS_DEPLOY_ROLE_ARN": f"arn:aws:iam::{ACCOUNT_ID}:role/sagelake-github-deploy",
        "CFN_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT_ID}:role/sagelake-cloudformation",
        "STACK_PREFIX": "sl",
        "WAREHOUSE": "enabled",
        "LAKE_PARAMETERS": "",
        "ROLES_PARAMETERS": "",
        "GLUE_PARAMETERS": "",
        "ML_PARAMETERS": "",
        "WAREHOUSE_PARAMETERS": "",
        "EVENTS_PARAMETERS": "",
        "MWAA_BUCKET": "mwaa-src",
        "MWAA_ENVIRONMENT": "sagelake-env",
        "MWAA_SETTINGS": "",
        "RELEASE": "v1.2.3",
    }
    assert set(env) - {"PATH"} == set(load(RELEASE)["jobs"]["deploy"]["env"])
    return {**env, **overrides}


def run_step(name: str, tmp_path: Path, cwd: Path, **env: str) -> tuple[subprocess.CompletedProcess, list]:
    """Run a deploy-job step's script with bash (as GitHub runs it: -e, pipefail) and a stub ``aws``;
    return the result and the aws calls."""
    stub = tmp_path / "bin" / "aws"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text(STUB_AWS.format(python=sys.executable))
    stub.chmod(0o755)
    make = stub.with_name("make")  # records its arguments as the aws stub does
    make.write_text(STUB_MAKE.format(python=sys.executable))
    make.chmod(0o755)
    templates = tmp_path / "outputs.json"
    templates.write_text(json.dumps({name: template_outputs(name) for name in STACKS}))
    log = tmp_path / "aws.log"
    log.write_text("")
    script = step(RELEASE, "deploy", name)["run"]
    environment = settings_env(**env)
    environment.update(PATH=f"{stub.parent}:{environment['PATH']}", AWS_LOG=str(log), MWAA_WAIT_SECONDS="0")
    environment["AWS_TEMPLATES"] = str(templates)
    environment.setdefault("WEBHOOK_API_KEY", "")
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
    )
    return done, [json.loads(line) for line in log.read_text().splitlines()]


def deploys(calls: list[list[str]]) -> dict[str, list[str]]:
    """Stack name → the arguments of its ``aws cloudformation deploy``, in call order."""
    found = {}
    for call in calls:
        if call[:2] == ["cloudformation", "deploy"]:
            found[call[call.index("--stack-name") + 1]] = call[2:]
    return found


def overrides(args: list[str]) -> list[str]:
    return args[args.index("--parameter-overrides") + 1 :] if "--parameter-overrides" in args else []


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_deploy_updates_every_stack_in_order_through_change_sets_as_the_cloudformation_role(
    tmp_path: Path,
) -> None:
    done, calls = run_step("Deploy the CloudFormation stacks", tmp_path, ROOT)
    assert done.returncode == 0, done.stderr
    stacks = deploys(calls)
    assert list(stacks) == [f"sl-{s}" for s in STACKS]
    for name, args in stacks.items():
        assert (ROOT / option(args, "--template-file")).is_file(), name
        assert option(args, "--role-arn") == f"arn:aws:iam::{ACCOUNT_ID}:role/sagelake-cloudformation"
        assert "--no-fail-on-empty-changeset" in args and "--no-execute-changeset" not in args
        assert option(args, "--tags") == "sagelake:release=v1.2.3"
    assert option(stacks["sl-roles"], "--capabilities") == "CAPABILITY_NAMED_IAM"
    assert option(stacks["sl-events"], "--capabilities") == "CAPABILITY_IAM"
    assert "--capabilities" not in stacks["sl-lake"] and overrides(stacks["sl-lake"]) == []
    lake = ["LakeBucketName=sl-lake.SagelakeBucket", "GlueDatabaseName=sl-lake.SagelakeGlueDatabase"]
    assert overrides(stacks["sl-roles"]) == [*lake, "LakeKmsKeyArn=", "Warehouse=enabled"]
    assert overrides(stacks["sl-glue"]) == [*lake, "GlueRoleArn=sl-roles.SagelakeGlueRole"]
    assert overrides(stacks["sl-warehouse"]) == ["SpectrumRoleArn=sl-roles.SagelakeSpectrumRole"]
    assert overrides(stacks["sl-events"]) == ["LakeBucketName=sl-lake.SagelakeBucket"]


def test_deploy_takes_the_variables_parameters_and_skips_a_disabled_warehouse(tmp_path: Path) -> None:
    done, calls = run_step(
        "Deploy the CloudFormation stacks",
        tmp_path,
        ROOT,
        WAREHOUSE="disabled",
        LAKE_PARAMETERS="LakeBucketName=acme-lake Encryption=SSE-KMS",
        ML_PARAMETERS="NotificationEmail=ops@example.com",
        EVENTS_PARAMETERS="DeliveryMode=webhook WebhookBaseUrl=https://airflow.example.com",
        WEBHOOK_API_KEY="s3cret",
    )
    assert done.returncode == 0, done.stderr
    stacks = deploys(calls)
    assert list(stacks) == ["sl-lake", "sl-roles", "sl-glue", "sl-ml", "sl-events"]
    assert overrides(stacks["sl-lake"]) == ["LakeBucketName=acme-lake", "Encryption=SSE-KMS"]
    assert overrides(stacks["sl-roles"])[-1] == "Warehouse=disabled"
    assert overrides(stacks["sl-ml"]) == ["NotificationEmail=ops@example.com"]
    assert overrides(stacks["sl-events"]) == [
        "LakeBucketName=sl-lake.SagelakeBucket",
        "WebhookApiKey=s3cret",
        "DeliveryMode=webhook",
        "WebhookBaseUrl=https://airflow.example.com",
    ]


def test_deploy_stops_at_the_first_stack_that_fails(tmp_path: Path) -> None:
    done, calls = run_step("Deploy the CloudFormation stacks", tmp_path, ROOT, AWS_FAIL_STACK="sl-roles")
    assert done.returncode != 0
    assert list(deploys(calls)) == ["sl-lake", "sl-roles"]


def make_package_settings(calls: list[list[str]]) -> dict[str, str]:
    """The ``--set`` settings of the one ``make package`` call (ARGS, as the recipe's shell splits it)."""
    ((_, target, args),) = [c for c in calls if c[:1] == ["make"]]
    assert target == "package" and args.startswith("ARGS=")
    words = shlex.split(args.removeprefix("ARGS="))
    assert words[0::2] == ["--set"] * (len(words) // 2)
    return dict(word.split("=", 1) for word in words[1::2])


@pytest.mark.parametrize("warehouse", ["enabled", "disabled"])
def test_package_exports_every_setting_the_stacks_outputs_feed(tmp_path: Path, warehouse: str) -> None:
    (tmp_path / "dist" / "mwaa" / "dags").mkdir(parents=True)
    for name in ("plugins.zip", "requirements.txt", "startup.sh"):
        (tmp_path / "dist" / "mwaa" / name).write_text("")
    extra = "SAGELAKE_TRAINING_WINDOW_DAYS=14 SAGELAKE_ALGORITHM=xgboost"
    done, calls = run_step(
        "Build the MWAA package", tmp_path, tmp_path, WAREHOUSE=warehouse, MWAA_SETTINGS=extra
    )
    assert done.returncode == 0, done.stderr
    expected = {
        description.split(":")[0]: f"sl-{stack}.{key}"
        for stack in STACKS
        if stack != "warehouse" or warehouse == "enabled"
        for key, description in template_outputs(stack).items()
        if re.match(r"SAGELAKE_[A-Z0-9_]+:", description)
    }
    expected |= {"SAGELAKE_EVENTS_QUEUE_URL": "sl-events.QueueUrl"}
    expected |= {"SAGELAKE_TRAINING_WINDOW_DAYS": "14", "SAGELAKE_ALGORITHM": "xgboost"}
    assert {"SAGELAKE_BUCKET", "SAGELAKE_GLUE_ROLE", "SAGELAKE_MODEL_PACKAGE_GROUP"} <= set(expected)
    assert ("SAGELAKE_REDSHIFT_WORKGROUP" in expected) is (warehouse == "enabled")
    assert make_package_settings(calls) == expected


def test_package_step_fails_when_make_package_leaves_something_out(tmp_path: Path) -> None:
    (tmp_path / "dist" / "mwaa" / "dags").mkdir(parents=True)
    (tmp_path / "dist" / "mwaa" / "plugins.zip").write_text("")
    done, _ = run_step("Build the MWAA package", tmp_path, tmp_path)
    assert done.returncode != 0 and "requirements.txt" in done.stdout


def mwaa_package(root: Path, startup: bool) -> Path:
    package = root / "dist" / "mwaa"
    (package / "dags").mkdir(parents=True)
    (package / "dags" / "churn.py").write_text("")
    for name in MWAA_KEYS[: 3 if startup else 2]:
        (package / name).write_text(name)
    return root


@pytest.mark.parametrize("startup", [True, False], ids=["with-startup", "without-startup"])
def test_upload_syncs_the_dags_and_points_the_environment_at_the_new_object_versions(
    tmp_path: Path, startup: bool
) -> None:
    work = mwaa_package(tmp_path / "work", startup)
    name = "Upload to the MWAA bucket and update the environment"
    done, calls = run_step(name, tmp_path, work, AWS_MWAA_STATUSES="UPDATING,UPDATING,AVAILABLE")
    assert done.returncode == 0, done.stderr
    assert calls[0] == ["s3", "sync", "dist/mwaa/dags", "s3://mwaa-src/dags", "--delete"]
    uploaded = {option(c, "--key"): option(c, "--body") for c in calls if c[:2] == ["s3api", "put-object"]}
    assert uploaded == {k: f"dist/mwaa/{k}" for k in MWAA_KEYS[: 3 if startup else 2]}
    assert all(option(c, "--bucket") == "mwaa-src" for c in calls if c[:2] == ["s3api", "put-object"])
    (update,) = [c for c in calls if c[:2] == ["mwaa", "update-environment"]]
    expected = {
        "--name": "sagelake-env",
        "--dag-s3-path": "dags",
        "--plugins-s3-path": "plugins.zip",
        "--plugins-s3-object-version": "ver-plugins.zip",
        "--requirements-s3-path": "requirements.txt",
        "--requirements-s3-object-version": "ver-requirements.txt",
    }
    if startup:
        expected |= {
            "--startup-script-s3-path": "startup.sh",
            "--startup-script-s3-object-version": "ver-startup.sh",
        }
    assert dict(zip(update[2::2], update[3::2], strict=True)) == expected
    assert [c[:2] for c in calls].count(["mwaa", "get-environment"]) == 3  # waited until AVAILABLE


@pytest.mark.parametrize(
    ("env", "updated"),
    [({"AWS_MWAA_STATUSES": "UPDATING,UPDATE_FAILED"}, True), ({"AWS_UNVERSIONED": "1"}, False)],
    ids=["update-failed", "unversioned-bucket"],
)
def test_upload_fails_on_a_failed_update_or_an_unversioned_bucket(
    tmp_path: Path, env: dict[str, str], updated: bool
) -> None:
    work = mwaa_package(tmp_path / "work", startup=False)
    done, calls = run_step("Upload to the MWAA bucket and update the environment", tmp_path, work, **env)
    assert done.returncode != 0
    assert any(c[:2] == ["mwaa", "update-environment"] for c in calls) is updated


def test_step_scripts_are_valid_bash() -> None:
    for s in all_steps():
        if "run" in s:
            done = subprocess.run(["bash", "-n", "-c", s["run"]], capture_output=True, text=True)
            assert done.returncode == 0, f"{s.get('name')}: {done.stderr}"


# --- include/infra/cicd.cfn.json: the OIDC provider and the two roles -------------------------------------


def render(node: Any, symbols: dict[str, Any]) -> Any:
    """The template fragment with Ref, Fn::Sub, Fn::GetAtt and Fn::If resolved from ``symbols``."""
    if isinstance(node, list):
        return [render(item, symbols) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return symbols[arg]
        if fn == "Fn::GetAtt":
            return symbols[".".join(arg)]
        if fn == "Fn::Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(symbols[m[1]]), arg)
        if fn == "Fn::If":
            return render(arg[1] if symbols[arg[0]] else arg[2], symbols)
    return {key: render(value, symbols) for key, value in node.items()}


def cicd(**params: str) -> dict[str, Any]:
    tpl = json.loads(CICD_TEMPLATE.read_text())
    values = {n: p["Default"] for n, p in tpl["Parameters"].items() if "Default" in p}
    values |= {
        "GitHubRepository": "octo/sagelake",
        "MwaaBucketName": "mwaa-src",
        "MwaaEnvironmentName": "env",
    }
    values |= params
    symbols = {
        **values,
        "AWS::Partition": "aws",
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT_ID,
        "CreateProvider": values["CreateOidcProvider"] == "true",
        "GitHubOidcProvider": "arn:created-provider",
        "CloudFormationRole.Arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{values['CloudFormationRoleName']}",
        "DeployRole.Arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{values['DeployRoleName']}",
    }
    resources = {
        name: render(r, symbols)
        for name, r in tpl["Resources"].items()
        if r.get("Condition") is None or symbols[r["Condition"]]
    }
    return {"resources": resources, "outputs": render(tpl["Outputs"], symbols), "params": values}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def cicd_statements(role: str, **params: str) -> list[dict[str, Any]]:
    props = cicd(**params)["resources"][role]["Properties"]
    return [s for policy in props["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def grants(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Action → the resources it is allowed on."""
    found: dict[str, set[str]] = {}
    for statement in statements:
        if statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                found.setdefault(action, set()).update(as_list(statement["Resource"]))
    return found


@pytest.mark.parametrize(("create", "provider"), [("true", "arn:created-provider"), ("false", None)])
def test_deploy_role_trusts_only_the_repositorys_release_tags_through_github_oidc(
    create: str, provider: str | None
) -> None:
    stack = cicd(CreateOidcProvider=create)
    assert ("GitHubOidcProvider" in stack["resources"]) is (create == "true")
    if provider is None:
        provider = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
    else:
        created = stack["resources"]["GitHubOidcProvider"]["Properties"]
        assert created == {
            "Url": "https://token.actions.githubusercontent.com",
            "ClientIdList": ["sts.amazonaws.com"],
        }
    (trust,) = stack["resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Effect": "Allow",
        "Principal": {"Federated": provider},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:octo/sagelake:ref:refs/tags/v*"},
        },
    }
    assert stack["outputs"]["OidcProviderArn"]["Value"] == provider
    assert load(RELEASE)["on"]["push"]["tags"] == [stack["params"]["ReleaseTagPattern"]]
    assert "environment" not in load(RELEASE)["jobs"]["deploy"]  # it would change the OIDC subject


def test_deploy_role_may_only_change_the_projects_stacks_upload_the_package_and_update_the_environment(
    tmp_path: Path,
) -> None:
    found = grants(cicd_statements("DeployRole"))
    stack_arns = {f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/sagelake-{s}/*" for s in STACKS}
    cloudformation = {a: r for a, r in found.items() if a.startswith("cloudformation:")}
    assert sorted(cloudformation) == [
        "cloudformation:CreateChangeSet",
        "cloudformation:DeleteChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:DescribeStackEvents",
        "cloudformation:DescribeStacks",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:GetTemplateSummary",
    ]
    assert all(resources == stack_arns for resources in cloudformation.values())
    assert found["iam:PassRole"] == {f"arn:aws:iam::{ACCOUNT_ID}:role/sagelake-cloudformation"}
    bucket = "arn:aws:s3:::mwaa-src"
    assert found["s3:PutObject"] == {f"{bucket}/dags/*", *(f"{bucket}/{k}" for k in MWAA_KEYS)}
    assert found["s3:DeleteObject"] == {f"{bucket}/dags/*"} and found["s3:ListBucket"] == {bucket}
    environment = {f"arn:aws:airflow:{REGION}:{ACCOUNT_ID}:environment/env"}
    assert found["airflow:UpdateEnvironment"] == found["airflow:GetEnvironment"] == environment
    assert set(found) == {
        *cloudformation,
        "iam:PassRole",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
    } | {
        "airflow:UpdateEnvironment",
        "airflow:GetEnvironment",
    }
    by_sid = {s["Sid"]: s for s in cicd_statements("DeployRole")}
    role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/sagelake-cloudformation"
    assert by_sid["CreateChangeSetsAsTheCloudFormationRole"]["Condition"] == {
        "StringEquals": {"cloudformation:RoleArn": role_arn}
    }
    assert by_sid["PassOnlyTheCloudFormationRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
    }
    # what the workflow does is what the role allows: its stacks and its object keys
    done, calls = run_step("Deploy the CloudFormation stacks", tmp_path, ROOT, STACK_PREFIX="sagelake")
    assert {f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{s}/*" for s in deploys(calls)} == stack_arns
    work = mwaa_package(tmp_path / "work", startup=True)
    done, calls = run_step(
        "Upload to the MWAA bucket and update the environment", tmp_path, work, MWAA_BUCKET="mwaa-src"
    )
    assert done.returncode == 0, done.stderr
    assert {f"{bucket}/{option(c, '--key')}" for c in calls if c[1] == "put-object"} <= found["s3:PutObject"]


def test_cloudformation_role_is_for_cloudformation_and_the_projects_resources_only() -> None:
    stack = cicd(Prefix="acme")
    role = stack["resources"]["CloudFormationRole"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    statements = cicd_statements("CloudFormationRole", Prefix="acme")
    wildcard = {a for s in statements if s["Resource"] == "*" for a in as_list(s["Action"])}
    assert set(role["Metadata"]["WildcardResources"]) == wildcard
    assert all(a == "kms:CreateKey" or a.startswith("ec2:Describe") for a in wildcard)
    found = grants(statements)
    assert found["iam:CreateRole"] == found["iam:PutRolePolicy"] == {f"arn:aws:iam::{ACCOUNT_ID}:role/acme-*"}
    (denied,) = [s for s in statements if s["Effect"] == "Deny"]
    assert (denied["Action"], set(denied["Resource"])) == (
        "iam:*",
        {
            f"arn:aws:iam::{ACCOUNT_ID}:role/sagelake-github-deploy",
            f"arn:aws:iam::{ACCOUNT_ID}:role/sagelake-cloudformation",
        },
    )
    (passing,) = [s for s in statements if "iam:PassRole" in as_list(s["Action"])]
    assert passing["Resource"] == f"arn:aws:iam::{ACCOUNT_ID}:role/acme-*"
    assert "cloudformation.amazonaws.com" not in passing["Condition"]["StringEquals"]["iam:PassedToService"]
    group = {f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:model-package-group/acme*"}
    for action in (a for a in found if a.startswith("sagemaker:")):  # the group, never a model or endpoint
        assert action.endswith(("ModelPackageGroup", "Tags")) and found[action] == group, action


def test_the_docs_name_every_variable_the_release_reads() -> None:
    doc = (ROOT / "docs" / "cicd.md").read_text()
    release = RELEASE.read_text()
    for name in sorted(set(re.findall(r"(?:vars|secrets)\.([A-Z_]+)", release))):
        assert name in doc, f"docs/cicd.md does not explain {name}"
    for output in json.loads(CICD_TEMPLATE.read_text())["Outputs"]:
        assert output in doc
