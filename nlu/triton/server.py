"""Start the Triton Inference Server bundled in nvidia-pytriton on our model repository.

The bundled server needs three things pytriton normally arranges: the Python-backend stub
built for this interpreter's version next to the backend, pytriton's libraries and this
interpreter's libpython (under pyenv, sysconfig's LIBDIR) on LD_LIBRARY_PATH, and this
environment's site-packages on PYTHONPATH so that the backend can import onnxruntime. Our
Python-based backend (nlu/triton/backend/model.py) is installed beside the bundled ones.
"""

from __future__ import annotations

import os
import shutil
import site
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import List, NoReturn, Optional

import pytriton
from pytriton.utils.distribution import get_libs_path, get_stub_path

from nlu.triton.contract import API_KEY_HEADER, BACKEND, RESTRICTED_APIS

TRITON_DIST = Path(pytriton.__file__).parent / "tritonserver"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Our backend: the module its model.py imports from beside it (Triton has no nlu package), then model.py.
BACKEND_FILES = tuple(Path(__file__).with_name("backend") / name for name in ("onnx_session.py", "model.py"))
RESPONSE_CACHE_BYTES = 16 * 1024 * 1024  # thousands of answers (a short message with 20 tags: ~1 KiB)


def backend_directory(cache: Path) -> Path:
    """The bundled backends with the stub for this Python (copied once per cache) and ours (always fresh)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    cache.mkdir(parents=True, exist_ok=True)
    backends = cache / f"backends-py{version}"
    stub = backends / "python" / "triton_python_backend_stub"
    if not stub.exists():
        staging = Path(tempfile.mkdtemp(prefix="backends-", dir=cache))  # servers may start side by side
        shutil.copytree(TRITON_DIST / "backends", staging, dirs_exist_ok=True)
        shutil.copy(get_stub_path(version), staging / "python" / "triton_python_backend_stub")
        try:
            staging.rename(backends)
        except OSError:  # another server finished the same copy first
            shutil.rmtree(staging, ignore_errors=True)
    install_backend(backends)
    return backends


def install_backend(backends: Path) -> None:
    """Put our backend's files in <backends>/nlu_onnx/ (each atomically: servers may share them)."""
    directory = backends / BACKEND
    directory.mkdir(exist_ok=True)
    for source in BACKEND_FILES:
        descriptor, name = tempfile.mkstemp(prefix=f".{source.stem}-", suffix=".py", dir=directory)
        os.close(descriptor)
        shutil.copyfile(source, name)
        Path(name).replace(directory / source.name)


def server_command(
    repository: Path,
    backends: Path,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    api_key: str,
    host: str = "127.0.0.1",
    log_verbose: int = 0,
) -> List[str]:
    """tritonserver's command line: explicit model control, every model in the repository loaded,
    listening on `host` only, and every API but health, metadata and inference behind `api_key`.

    Triton's own documentation warns that an open model-repository API runs whatever code a caller
    loads; the key is sent in the `triton-api-key` header, by the NLU component alone.
    """
    restricted = f"{RESTRICTED_APIS}:{API_KEY_HEADER}={api_key}"
    return [
        str(TRITON_DIST / "bin" / "tritonserver"),
        f"--model-repository={repository.resolve()}",
        f"--backend-directory={backends}",
        f"--cache-directory={TRITON_DIST / 'caches'}",
        f"--cache-config=local,size={RESPONSE_CACHE_BYTES}",  # used by models whose config enables response_cache
        "--model-control-mode=explicit",
        "--load-model=*",
        "--strict-readiness=false",  # ready with no model yet; our models load when Rasa asks
        f"--http-address={host}",
        f"--http-port={http_port}",
        f"--grpc-address={host}",
        f"--grpc-port={grpc_port}",
        f"--metrics-address={host}",
        f"--metrics-port={metrics_port}",
        f"--http-restricted-api={restricted}",
        f"--grpc-restricted-protocol={restricted}",
        "--allow-metrics=true",
        f"--log-verbose={log_verbose}",
        "--exit-on-error=false",
    ]


def server_environment() -> dict:
    """Environment in which the bundled server and its Python stub find their libraries."""
    env = dict(os.environ)
    libraries = [str(get_libs_path()), sysconfig.get_config_var("LIBDIR")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libraries + [p for p in [env.get("LD_LIBRARY_PATH")] if p])
    python_path = [str(PROJECT_ROOT), *site.getsitepackages()]
    env["PYTHONPATH"] = os.pathsep.join(python_path + [p for p in [env.get("PYTHONPATH")] if p])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def exec_server(
    repository: Path,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    api_key: str,
    host: str = "127.0.0.1",
    cache: Optional[Path] = None,
) -> NoReturn:
    """Replace this process with tritonserver, so that signals reach the server itself."""
    repository.mkdir(parents=True, exist_ok=True)
    backends = backend_directory(cache or PROJECT_ROOT / ".triton")
    command = server_command(repository, backends, http_port, grpc_port, metrics_port, api_key, host)
    os.execve(command[0], command, server_environment())
