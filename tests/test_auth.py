"""The cluster's Ray auth token and TLS material: settings, stores, startup scripts, head commands,
and the AWS store against moto (the parameter exists while the cluster does, the user data never
carries the token, the head's termination deletes it)."""

from __future__ import annotations

import copy
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cloud_factories import aws_session, gpu_offer, moto_server
from hypothesis import given
from hypothesis import strategies as st

from ray_multicloud.auth import (
    AuthSettings,
    bootstrap_auth,
    client_env,
    delete_cluster_secrets,
    ensure_cluster_secrets,
    head_commands,
    install_head,
    local_store,
    parse_auth,
    secret_name,
    startup_lines,
    tls_secrets,
    token_secret,
)
from ray_multicloud.auth.secrets import FileSecretStore, ssm_parameter_name
from ray_multicloud.auth.tls import cluster_material
from ray_multicloud.clouds._startup import render_startup_script
from ray_multicloud.clouds.base import AuthBootstrap, LaunchRequest, RayBootstrap, WorkerSetup
from ray_multicloud.cluster_config.provider_section import load_cluster_yaml
from ray_multicloud.errors import ConfigError
from ray_multicloud.provider import MultiCloudNodeProvider
from ray_multicloud.types import RequestId

REPO_YAML = Path(__file__).resolve().parents[1] / "cluster_configs" / "local-multicloud.yaml"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- settings ------------------------------------------------------------------------------------


def test_token_auth_is_the_default_and_tls_is_off() -> None:
    assert parse_auth({}) == AuthSettings(token=True, tls=False)
    assert parse_auth({"auth_mode": "disabled"}) == AuthSettings(token=False, tls=False)
    local = {"clouds": {"aws": {"driver": "local"}, "onprem": {"driver": "private"}}}
    assert parse_auth({**local, "tls": True}) == AuthSettings(token=True, tls=True)


@given(
    st.one_of(
        st.integers(),
        st.text(max_size=8),
        st.none(),
        st.lists(st.text(max_size=3), max_size=2),
        st.booleans(),
    )
)
def test_a_bad_auth_mode_names_its_key(value: Any) -> None:
    if value in ("token", "disabled"):
        return
    with pytest.raises(ConfigError, match=r"provider.auth_mode"):
        parse_auth({"auth_mode": value})


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
def test_a_bad_tls_names_its_key(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"provider.tls"):
        parse_auth({"tls": value})


def test_tls_on_a_public_cloud_is_refused_with_the_way_out() -> None:
    with pytest.raises(ConfigError, match=r"provider.tls.*\['gcp'\].*overlay"):
        parse_auth({"tls": True, "clouds": {"aws": {"driver": "local"}, "gcp": {}}})


def test_secret_names_fit_every_store() -> None:
    assert secret_name("rmc_local.1", "auth-token") == "rmc-rmc-local-1-auth-token"
    assert token_secret("c") == "rmc-c-auth-token"
    assert tls_secrets("c") == ("rmc-c-tls-ca", "rmc-c-tls-cert", "rmc-c-tls-key")


# -- the file store and the cluster's secrets --------------------------------------------------------


def test_file_store_writes_0600_files_in_a_0700_directory(tmp_path: Path) -> None:
    store = FileSecretStore(tmp_path / "s")
    assert store.get("a") is None
    store.put("a", "v1")
    store.put("a", "v2")
    assert store.get("a") == "v2"
    assert mode(tmp_path / "s" / "a") == 0o600 and mode(tmp_path / "s") == 0o700
    store.delete("a")
    store.delete("a")  # idempotent
    assert store.get("a") is None
    with pytest.raises(ValueError, match=r"secret name"):
        store.put("../x", "v")


def test_secrets_are_made_once_copied_everywhere_and_deleted(tmp_path: Path) -> None:
    one, two = FileSecretStore(tmp_path / "one"), FileSecretStore(tmp_path / "two")
    ensure_cluster_secrets([one], "c", AuthSettings(token=True, tls=True))
    token = one.get(token_secret("c"))
    assert token is not None and len(token) == 64 and int(token, 16) >= 0
    ensure_cluster_secrets([one, two], "c", AuthSettings(token=True, tls=True))  # a second `ray up`
    assert one.get(token_secret("c")) == token == two.get(token_secret("c"))
    for name in tls_secrets("c"):
        assert one.get(name) == two.get(name) is not None
    other = FileSecretStore(tmp_path / "three")
    ensure_cluster_secrets([other], "d", AuthSettings())
    assert other.get(token_secret("d")) != token  # each cluster its own token
    delete_cluster_secrets([one, two], "c")
    assert not list((tmp_path / "one").iterdir()) and not list((tmp_path / "two").iterdir())


def test_the_head_installs_its_copies_from_the_store(tmp_path: Path) -> None:
    store = FileSecretStore(tmp_path / "store")
    with pytest.raises(ConfigError, match=r"rmc-c-auth-token.*re-run `ray up`"):
        install_head([store], "c", AuthSettings(), tmp_path / "home")
    ensure_cluster_secrets([store], "c", AuthSettings())
    written = install_head([store], "c", AuthSettings(), tmp_path / "home")
    assert written == [tmp_path / "home" / ".ray_multicloud" / "auth_token"]
    assert written[0].read_text() == store.get(token_secret("c")) and mode(written[0]) == 0o600


def test_client_env_points_at_the_local_store(tmp_path: Path) -> None:
    provider = {"clouds": {"aws": {"driver": "local"}}}
    env = client_env(provider, "c", tmp_path)
    assert env == {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(tmp_path / "secrets" / "c" / "rmc-c-auth-token"),
    }
    assert client_env({**provider, "auth_mode": "disabled"}, "c", tmp_path) == {"RAY_AUTH_MODE": "disabled"}
    tls = client_env({**provider, "tls": True}, "c", tmp_path)
    assert tls["RAY_USE_TLS"] == "1" and tls["RAY_TLS_CA_CERT"].endswith("rmc-c-tls-ca")


def test_tls_material_verifies_against_its_ca(tmp_path: Path) -> None:
    """Checked by openssl, not by the code that made it."""
    material = cluster_material("c")
    (tmp_path / "ca.pem").write_text(material.ca_cert)
    (tmp_path / "cert.pem").write_text(material.cert)
    out = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "cert.pem")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0 and "OK" in out.stdout
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-in", str(tmp_path / "cert.pem")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text
    assert "PRIVATE KEY" in material.key


# -- what nodes run --------------------------------------------------------------------------------


def boot(auth: AuthBootstrap | None, setup: WorkerSetup | None = None) -> RayBootstrap:
    return RayBootstrap(
        gcs_address="10.0.0.1:6379", node_type="t4", resources={"CPU": 4, "GPU": 1}, auth=auth, setup=setup
    )


def test_the_startup_script_fetches_the_token_first_and_exports_it(tmp_path: Path) -> None:
    store = FileSecretStore(tmp_path / "store")
    auth = bootstrap_auth(AuthSettings(), "c")
    setup = WorkerSetup(initialization_commands=("echo init",))
    script = render_startup_script(
        boot(auth, setup),
        gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge"),
        watcher_cloud="aws",
        instance_id_lines=["RMC_INSTANCE_ID=x"],
        secret_store=store,
    )
    lines = script.splitlines()
    fetch = next(i for i, line in enumerate(lines) if "rmc-c-auth-token" in line)
    export = next(i for i, line in enumerate(lines) if line.startswith("export RAY_AUTH_MODE="))
    assert fetch < export < next(i for i, line in enumerate(lines) if "echo init" in line)
    assert lines[export] == 'export RAY_AUTH_MODE="token" RAY_AUTH_TOKEN_PATH="$RMC_AUTH_DIR/auth_token"'
    assert (
        lines.index(next(x for x in lines if x.startswith("ray start") or (" start " in x and "ray" in x)))
        > export
    )


def test_the_startup_script_fetch_really_writes_a_0600_copy(tmp_path: Path) -> None:
    store = FileSecretStore(tmp_path / "store")
    ensure_cluster_secrets([store], "c", AuthSettings())
    lines = startup_lines(bootstrap_auth(AuthSettings(), "c"), store, cloud="local")
    script = "\n".join(
        [
            "set -euo pipefail",
            'rmc_fail() { echo FAIL "$1"; exit 9; }',
            *lines,
            'echo "$RAY_AUTH_MODE $RAY_AUTH_TOKEN_PATH"',
        ]
    )
    home = tmp_path / "home"
    home.mkdir()
    out = subprocess.run(
        ["bash", "-c", script],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    copy_path = home / ".ray_multicloud" / "auth_token"
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == f"token {copy_path}"
    assert copy_path.read_text() == store.get(token_secret("c")) and mode(copy_path) == 0o600
    assert mode(copy_path.parent) == 0o700
    # A missing secret ends the boot naming it.
    store.delete(token_secret("c"))
    copy_path.unlink()
    failed = subprocess.run(
        ["bash", "-c", script],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 9 and "FAIL secret rmc-c-auth-token" in failed.stdout


def test_auth_disabled_is_said_explicitly_and_no_auth_leaves_ray_alone() -> None:
    offer = gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge")
    off = render_startup_script(
        boot(AuthBootstrap(token=False)), offer, watcher_cloud="aws", instance_id_lines=["RMC_INSTANCE_ID=x"]
    )
    assert "export RAY_AUTH_MODE=disabled" in off.splitlines()
    untouched = render_startup_script(
        boot(None), offer, watcher_cloud="aws", instance_id_lines=["RMC_INSTANCE_ID=x"]
    )
    assert "RAY_AUTH" not in untouched


def test_a_driver_without_a_store_refuses_rather_than_start_a_locked_out_worker() -> None:
    with pytest.raises(ConfigError, match=r"provider.auth_mode.*'gcp'.*disabled"):
        render_startup_script(
            boot(bootstrap_auth(AuthSettings(), "c")),
            gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8"),
            watcher_cloud="gcp",
            instance_id_lines=["RMC_INSTANCE_ID=x"],
        )


def test_docker_workers_get_the_token_inside_the_container(tmp_path: Path) -> None:
    setup = WorkerSetup(docker_image="rayproject/ray:2.60.0-gpu", container_name="rc")
    script = render_startup_script(
        boot(bootstrap_auth(AuthSettings(), "c"), setup),
        gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge"),
        watcher_cloud="aws",
        instance_id_lines=["RMC_INSTANCE_ID=x"],
        secret_store=FileSecretStore(tmp_path),
    )
    run = next(line for line in script.splitlines() if line.startswith("docker run"))
    assert '-v "$RMC_AUTH_DIR":"$RMC_AUTH_DIR":ro' in run
    start = next(line for line in script.splitlines() if "ray start" in line)
    assert "-e RAY_AUTH_MODE" in start and "-e RAY_AUTH_TOKEN_PATH" in start


def test_head_commands_run_under_the_token_after_installing_it() -> None:
    raw = load_cluster_yaml(REPO_YAML)
    done = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(raw))
    commands = done["head_start_ray_commands"]
    prefix = 'export RAY_AUTH_MODE="token" RAY_AUTH_TOKEN_PATH="$HOME/.ray_multicloud/auth_token"; '
    assert commands[0] == prefix + "python -m ray_multicloud.auth head --config ~/ray_bootstrap_config.yaml"
    assert all(c.startswith(prefix) for c in commands)
    assert any("ray start --head" in c for c in commands)
    assert MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(done))["head_start_ray_commands"] == commands
    off = copy.deepcopy(raw)
    off["provider"]["auth_mode"] = "disabled"
    plain = MultiCloudNodeProvider.bootstrap_config(off)["head_start_ray_commands"]
    assert all(c.startswith('export RAY_AUTH_MODE="disabled"; ') for c in plain)
    assert not any("ray_multicloud.auth head" in c for c in plain)
    assert head_commands(["ray stop"], AuthSettings(token=False)) == [
        'export RAY_AUTH_MODE="disabled"; ray stop'
    ]


def test_local_store_lives_under_the_state_dir(tmp_path: Path) -> None:
    assert local_store(tmp_path, "a/b").root == tmp_path / "secrets" / "a-b"


# -- AWS: SSM Parameter Store, against moto ------------------------------------------------------------


def test_aws_token_lives_in_ssm_never_in_user_data_and_goes_with_the_head(tmp_path: Path) -> None:
    from ray.autoscaler.tags import (
        NODE_KIND_HEAD,
        NODE_KIND_WORKER,
        TAG_RAY_NODE_KIND,
        TAG_RAY_USER_NODE_TYPE,
    )

    from ray_multicloud.clouds.aws import AwsCloud

    with moto_server() as endpoint:
        session = aws_session()
        cloud = AwsCloud(
            "aws",
            regions=("us-east-1",),
            image_id={"us-east-1": "ami-12345678"},
            endpoint_url=endpoint,
            session=session,
            sleep=lambda _s: None,
        )
        provider_config = {
            "gcs_address": "10.0.0.1:6379",
            "state_dir": str(tmp_path),
            "clouds": {"aws": {"driver": "aws", "regions": ["us-east-1"]}},
        }
        provider = MultiCloudNodeProvider(provider_config, "prod", clouds={"aws": cloud})
        offer = gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge")
        head_config = {
            "offer": {
                "cloud": "aws",
                "region": "us-east-1",
                "zone": "use1-az1",
                "instance_type": "p3.2xlarge",
                "capacity": "on-demand",
                "price_per_hour": 3.06,
                "vcpus": 8,
                "memory_gib": 61,
            }
        }
        created = provider.create_node(
            head_config, {TAG_RAY_NODE_KIND: NODE_KIND_HEAD, TAG_RAY_USER_NODE_TYPE: "head"}, 1
        )
        ssm = session.client("ssm", region_name="us-east-1", endpoint_url=endpoint)
        param = ssm.get_parameter(Name=ssm_parameter_name(token_secret("prod")), WithDecryption=True)[
            "Parameter"
        ]
        assert param["Type"] == "SecureString"
        token = param["Value"]
        assert len(token) == 64

        # A worker's launch: the user data fetches the parameter with the instance role; it never holds it.
        bootstrap = provider._bootstrap("t4", offer, {"GPU": 1}, {})
        request = LaunchRequest(
            request_id=RequestId("r-0"),
            cluster="prod",
            pool="t4",
            offer=offer,
            tags={TAG_RAY_NODE_KIND: NODE_KIND_WORKER},
            bootstrap=bootstrap,
        )
        user_data = cloud.run_instances_params(request)["UserData"]
        assert token not in user_data
        assert (
            "aws ssm get-parameter --region us-east-1 --name /ray-multicloud/rmc-prod-auth-token" in user_data
        )
        assert 'RAY_AUTH_TOKEN_PATH="$RMC_AUTH_DIR/auth_token"' in user_data
        worker = cloud.launch(request)
        assert token not in str(worker.tags)

        # `ray down`: the head's termination deletes the parameter.
        provider.terminate_node(worker.instance_id)
        assert ssm.get_parameters(Names=[ssm_parameter_name(token_secret("prod"))])["Parameters"]
        provider.terminate_node(next(iter(created)))
        left = ssm.get_parameters(Names=[ssm_parameter_name(token_secret("prod"))])
        assert left["Parameters"] == [] and left["InvalidParameters"] == [
            ssm_parameter_name(token_secret("prod"))
        ]


# -- GCP Secret Manager and Azure Key Vault, against loopback fakes ---------------------------------


def run_fetch(lines: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """A worker's auth step as its startup script runs it (bash, set -euo pipefail, rmc_fail)."""
    script = "\n".join(
        [
            "set -euo pipefail",
            'rmc_fail() { echo "FAIL $1"; exit 9; }',
            *lines,
            'echo "$RAY_AUTH_MODE $RAY_AUTH_TOKEN_PATH"',
        ]
    )
    return subprocess.run(
        ["bash", "-c", script],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_gcp_secret_manager_store_and_the_workers_fetch(tmp_path: Path) -> None:
    from fakes.gcp_server import FakeGcp
    from fakes.secret_servers import INSTANCE_TOKEN, FakeSecretManager
    from google.auth.credentials import AnonymousCredentials

    from ray_multicloud.clouds.gcp import GcpCloud

    with FakeGcp(zones=("us-central1-a",)) as compute, FakeSecretManager("rmc-test") as fake:
        cloud = GcpCloud(
            "gcp",
            project="rmc-test",
            zones={"us-central1": ["us-central1-a"]},
            image="projects/debian-cloud/global/images/family/debian-12",
            api_endpoint=compute.url,
            credentials=AnonymousCredentials(),
            sleep=lambda _s: None,
            secrets_endpoint=fake.url,
            metadata_token_url=fake.metadata_token_url,
            service_account="w@rmc-test.iam",
        )
        store = cloud.secret_store("c")
        assert store.get(token_secret("c")) is None
        ensure_cluster_secrets([store], "c", AuthSettings())
        token = fake.value(token_secret("c"))
        assert token is not None and len(token) == 64 and store.get(token_secret("c")) == token
        ensure_cluster_secrets([store], "c", AuthSettings())  # a second `ray up`: kept, no new version
        assert fake.secrets[token_secret("c")] == [token]

        offer = gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100")
        request = LaunchRequest(
            request_id=RequestId("r-0"),
            cluster="c",
            pool="t4",
            offer=offer,
            tags={"rmc-cluster": "c"},
            bootstrap=boot(bootstrap_auth(AuthSettings(), "c")),
        )
        body = cloud.instance_body(request, "us-central1-a")
        script = next(i["value"] for i in body["metadata"]["items"] if i["key"] == "startup-script")
        assert token not in str(body)
        # The script's own fetch, run here: the instance's metadata token reads the secret.
        lines = script.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("RMC_AUTH_DIR="))
        end = next(i for i, line in enumerate(lines) if line.startswith("export RAY_AUTH_MODE="))
        home = tmp_path / "vm"
        home.mkdir()
        before = len(fake.tokens_seen)
        out = run_fetch(lines[start : end + 1], home)
        assert out.returncode == 0, out.stdout + out.stderr
        copy_path = home / ".ray_multicloud" / "auth_token"
        assert copy_path.read_text() == token and mode(copy_path) == 0o600
        assert fake.tokens_seen[before:] == [INSTANCE_TOKEN]  # the instance's identity, not the operator's

        delete_cluster_secrets([store], "c")
        assert token_secret("c") not in fake.secrets
        failed = run_fetch(lines[start : end + 1], home)
        assert failed.returncode == 9 and "FAIL secret rmc-c-auth-token (Secret Manager" in failed.stdout


def test_azure_key_vault_store_purges_so_the_next_ray_up_can_reuse_the_name(tmp_path: Path) -> None:
    from fakes.azure_server import FakeAzure, FakeAzureCredential
    from fakes.secret_servers import INSTANCE_TOKEN, FakeKeyVault

    from ray_multicloud.clouds.azure import AzureCloud

    with FakeAzure() as arm, FakeKeyVault() as vault:
        subnet = (
            f"/subscriptions/{arm.subscription}/resourceGroups/{arm.resource_group}"
            "/providers/Microsoft.Network/virtualNetworks/rmc-vnet/subnets/workers"
        )
        identity = (
            f"/subscriptions/{arm.subscription}/resourceGroups/{arm.resource_group}"
            "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/rmc-workers"
        )
        cloud = AzureCloud(
            "azure",
            subscription_id=arm.subscription,
            resource_group=arm.resource_group,
            subnet_ids={"eastus": subnet},
            ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA rmc",
            base_url=arm.url,
            credential=FakeAzureCredential("operator-token"),
            sleep=lambda _s: None,
            polling_interval_s=0,
            sdk_retry_total=0,
            key_vault=vault.url,
            managed_identity_id=identity,
            metadata_token_url=vault.metadata_token_url,
        )
        store = cloud.secret_store("c")
        assert store is not None
        ensure_cluster_secrets([store], "c", AuthSettings())
        token = vault.secrets[token_secret("c")]
        assert vault.tokens_seen and set(vault.tokens_seen) == {"operator-token"}

        offer = gpu_offer("azure", "eastus", "", "Standard_NC6s_v3")
        request = LaunchRequest(
            request_id=RequestId("r-0"),
            cluster="c",
            pool="t4",
            offer=offer,
            tags={"rmc-cluster": "c"},
            bootstrap=boot(bootstrap_auth(AuthSettings(), "c")),
        )
        body = cloud.vm_body(request)
        assert body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}
        import base64

        script = base64.b64decode(body["properties"]["osProfile"]["customData"]).decode()
        assert token not in script and token not in str(body)
        lines = script.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("RMC_AUTH_DIR="))
        end = next(i for i, line in enumerate(lines) if line.startswith("export RAY_AUTH_MODE="))
        home = tmp_path / "vm"
        home.mkdir()
        out = run_fetch(lines[start : end + 1], home)
        assert out.returncode == 0, out.stdout + out.stderr
        assert (home / ".ray_multicloud" / "auth_token").read_text() == token
        assert vault.tokens_seen[-1] == INSTANCE_TOKEN

        delete_cluster_secrets([store], "c")  # `ray down`: deleted and purged
        assert not vault.secrets and not vault.deleted
        ensure_cluster_secrets([store], "c", AuthSettings())  # the next `ray up` of the same cluster name
        assert vault.secrets[token_secret("c")] != token


def test_azure_without_a_key_vault_refuses_to_start_locked_out_workers() -> None:
    from fakes.azure_server import FakeAzure, FakeAzureCredential

    from ray_multicloud.clouds.azure import AzureCloud

    with FakeAzure() as arm:
        cloud = AzureCloud(
            "azure",
            subscription_id=arm.subscription,
            resource_group=arm.resource_group,
            subnet_ids={"eastus": "/x"},
            ssh_public_key="ssh-ed25519 AAAA rmc",
            base_url=arm.url,
            credential=FakeAzureCredential(),
            sleep=lambda _s: None,
        )
        assert cloud.secret_store("c") is None
        request = LaunchRequest(
            request_id=RequestId("r-0"),
            cluster="c",
            pool="t4",
            offer=gpu_offer("azure", "eastus", "", "Standard_NC6s_v3"),
            tags={},
            bootstrap=boot(bootstrap_auth(AuthSettings(), "c")),
        )
        with pytest.raises(ConfigError, match=r"provider.auth_mode"):
            cloud.vm_body(request)


def test_a_secret_store_on_plain_http_elsewhere_is_refused() -> None:
    from ray_multicloud.auth.rest_stores import AzureKeyVaultStore, GcpSecretStore

    with pytest.raises(ConfigError, match=r"secrets_endpoint"):
        GcpSecretStore("p", lambda: "t", endpoint="http://secrets.example.com")
    with pytest.raises(ConfigError, match=r"key_vault"):
        AzureKeyVaultStore("http://vault.example.com", lambda: "t")


# -- SSH hosts: the token over ssh's stdin, never a command line -------------------------------------


def test_ssh_hosts_get_the_token_over_stdin_and_lose_it_with_the_node(tmp_path: Path) -> None:
    from fakes.sshd import SshdFarm, fake_ray, ssh_cloud_spec, sshd_available

    from ray_multicloud.clouds.ssh import SshCloud

    if not sshd_available():
        pytest.skip("OpenSSH's sshd is not installed")
    with SshdFarm(tmp_path / "sshd", 1) as farm:
        spec = ssh_cloud_spec(farm, ray=str(fake_ray(tmp_path / "fake-ray")))
        cloud = SshCloud.from_config("dc1", spec, state_dir=str(tmp_path / "state"))
        try:
            store = cloud.secret_store("c1")
            assert store.root == tmp_path / "state" / "secrets" / "c1"
            ensure_cluster_secrets([store], "c1", AuthSettings())
            token = store.get(token_secret("c1"))
            assert token is not None
            offer = cloud.offers()[0]
            boot_ = RayBootstrap(
                gcs_address="127.0.0.1:1",
                node_type="gpu",
                resources={"CPU": 1, "GPU": 1},
                auth=bootstrap_auth(AuthSettings(), "c1"),
            )
            tags = {
                "rmc-cluster": "c1",
                "rmc-request-id": "r1",
                "rmc-pool": "gpu",
                "rmc-offer": offer.offer_id,
            }
            inst = cloud.launch(LaunchRequest(RequestId("r1"), "c1", "gpu", offer, tags, boot_))
            host_state = farm.hosts[0].dir / "home" / ".ray_multicloud"
            pushed = host_state / "secrets" / token_secret("c1")
            assert pushed.read_text() == token and mode(pushed) == 0o600 and mode(pushed.parent) == 0o700
            start = (host_state / "start.sh").read_text()
            assert token not in start and "secrets/rmc-c1-auth-token" in start
            for log in host_state.rglob("*.log"):
                assert token not in log.read_text(errors="replace")
            cloud.terminate(inst.instance_id)
            assert not pushed.exists()  # the node's end takes the host's copy with it
        finally:
            for node in cloud._all_nodes():
                cloud.terminate(node.instance_id)
            cloud.close()
