"""A real Milvus server: the store checks its version on connect and refuses one without BM25 functions.

The ``milvus`` package (2.3.5, the dev extra) runs a real standalone Milvus server; 2.3 predates the
BM25 full-text search the store needs (2.5). The server listens on every interface, so it runs in a
network namespace of its own (``unshare -n``, loopback only) together with the CLI that connects to
it: nothing is reachable from outside. Start-up takes ~15-30 s.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from assistant.errors import ConfigError
from assistant.stores.milvus import check_server_version

from conftest import ROOT

pytestmark = pytest.mark.milvus

# Inside the namespace: bring loopback up, start the server, run the CLI against it, report as JSON.
SCRIPT = textwrap.dedent('''
    import json, subprocess, sys
    from milvus import MilvusServer
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    server = MilvusServer()
    server.set_base_dir(sys.argv[1])
    server.start()
    try:
        store = f"milvus://127.0.0.1:{server.listen_port}"
        cli = subprocess.run([sys.executable, "-m", "assistant.cli", "list", "--store", store],
                             capture_output=True, text=True, timeout=120)
        print(json.dumps({"store": store, "rc": cli.returncode, "stdout": cli.stdout, "stderr": cli.stderr}))
    finally:
        server.stop()
''')


def _namespace_problem() -> str | None:
    if importlib.util.find_spec("milvus") is None:
        return "the milvus package (a Milvus 2.3.5 standalone server) is not installed: pip install -e '.[dev]'"
    if importlib.util.find_spec("pymilvus") is None:
        return "pymilvus is not installed: pip install -e '.[milvus]'"
    if not (shutil.which("unshare") and shutil.which("ip")):
        return "unshare/ip not found: the server (which listens on every interface) cannot be isolated"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace to isolate the server (unshare -n: {probe.stderr.strip()})"
    return None


def test_versions_before_2_5_are_refused_with_both_versions_named():
    for ok in ("v2.5.0", "2.5.12", "v2.6.1-rc1", "3.0.0"):
        check_server_version(ok, "milvus://h:19530")
    with pytest.raises(ConfigError, match=re.escape(
            "The Milvus server at milvus://h:19530 runs Milvus v2.4.15; the assistant needs Milvus 2.5 or later "
            "(BM25 full-text search functions).")):
        check_server_version("v2.4.15", "milvus://h:19530")
    check_server_version("unknown", "milvus://h:19530")  # unreadable: let through, Milvus' own errors follow


def test_a_real_milvus_2_3_server_is_refused_on_connect(tmp_path):
    problem = _namespace_problem()
    if problem:
        pytest.skip(problem)
    script = tmp_path / "milvus_check.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("ASSISTANT_INDEX", None)
    proc = subprocess.Popen(["unshare", "-n", sys.executable, str(script), str(tmp_path / "milvus")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the server is in this session too
        proc.communicate()
        pytest.fail("the Milvus server did not start and answer within 240 s")
    assert proc.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["rc"] != 0
    assert (f"The Milvus server at {result['store']} runs Milvus v2.3.5-lite; the assistant needs Milvus 2.5 or later "
            "(BM25 full-text search functions). Upgrade the server, or keep the index in a Milvus Lite file") in result["stderr"]
    assert "Traceback" not in result["stderr"]
