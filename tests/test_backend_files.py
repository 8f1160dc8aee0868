"""The Triton backend as installed (<backends>/nlu_onnx/): its model.py runs where the nlu package is
not installed, with the one session module beside it that the export, explain and the bench share,
so the graph files it serves are the serving contract's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nlu.triton import contract
from nlu.triton.server import install_backend

# Triton's own module, which only exists inside Triton: an empty stand-in, so that model.py imports.
STAND_IN = "triton_python_backend_utils.py"
CHECK = """
import sys
version, *paths = sys.argv[1:]
sys.path[:0] = paths
import model
print(model.FP32_FILE, model.served_graph(version).rsplit("/", 1)[-1])
"""


def test_the_installed_backend_imports_its_session_module_and_serves_the_contracts_files(tmp_path: Path) -> None:
    install_backend(tmp_path)
    backend = tmp_path / contract.BACKEND
    assert sorted(p.name for p in backend.iterdir()) == ["model.py", "onnx_session.py"]
    (tmp_path / STAND_IN).write_text("")
    version = tmp_path / "1"
    version.mkdir()
    served = []
    for graph in (contract.FP32_FILE, contract.INT8_FILE):  # INT8 wins once training left it
        (version / graph).write_bytes(b"")
        result = subprocess.run(
            [sys.executable, "-I", "-c", CHECK, str(version), str(backend), str(tmp_path)],
            cwd=backend,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        served.append(result.stdout.split())
    assert served == [[contract.FP32_FILE, contract.FP32_FILE], [contract.FP32_FILE, contract.INT8_FILE]]
