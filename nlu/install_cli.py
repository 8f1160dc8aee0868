"""`python -m nlu.install_cli`: install the Triton versions of Rasa model archives into a model repository.

python -m nlu.install_cli --repository DIR ARCHIVE [ARCHIVE ...]

ARCHIVE is a Rasa model archive's path or its http(s) URL (a model server). This does for a Triton
that shares no volume with Rasa what the NLU component does when Rasa loads a model: it reads the
archive's BertTritonNLU resource (nlu.archive) and installs its version with
nlu.triton.repository.install_version, data files only and our config. On Kubernetes each Triton pod
runs it before Triton starts (deploy/k8s/triton.yaml), so the versions are there when Triton loads
its models and when Rasa asks for them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Optional, Sequence
from urllib.parse import urlsplit

from nlu import archive
from nlu.triton import repository

DOWNLOAD_TIMEOUT_S = 300  # per blocking read: a slow model server fails the install instead of hanging it


def install(source: str, model_repository: Path) -> str:
    """Install the version of the archive at `source` (a path or an http(s) URL); what was done, as a line."""
    with tempfile.TemporaryDirectory() as scratch:
        stored = archive.extract(_fetch(source, Path(scratch)), Path(scratch))
        installed = repository.install_version(stored.triton_dir, model_repository, stored.name, stored.version)
    state = "installed" if installed else "already present"
    return f"{stored.name} version {stored.version} from {_shown(source)}: {state} in {model_repository}"


def _fetch(source: str, into: Path) -> Path:
    """The archive's local path: `source` itself, or the download of an http(s) URL into `into`."""
    if urlsplit(source).scheme not in ("http", "https"):
        return Path(source)
    target = into / "model.tar.gz"
    with urllib.request.urlopen(source, timeout=DOWNLOAD_TIMEOUT_S) as response, target.open("wb") as file:
        shutil.copyfileobj(response, file)
    return target


def _shown(source: str) -> str:
    """`source` without what may be a credential: a URL's user, password, query (a signed URL's key), fragment."""
    url = urlsplit(source)
    if url.scheme not in ("http", "https"):
        return source
    host = (url.hostname or "") + (f":{url.port}" if url.port else "")
    return url._replace(netloc=host, query="", fragment="").geturl()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlu.install_cli", description=__doc__.split("\n")[0])
    parser.add_argument("--repository", type=Path, required=True, help="the Triton model repository to install into")
    parser.add_argument("archives", nargs="+", help="Rasa model archives: paths or http(s) URLs")
    args = parser.parse_args(argv)
    for source in args.archives:
        try:
            print(install(source, args.repository))
        except (OSError, archive.ArchiveError) as error:
            print(
                f"Cannot read the Rasa model archive {_shown(source)}: {error}. Check that it exists "
                f"(for a URL: is the model server up and the file uploaded?) and that `rasa train` made it.",
                file=sys.stderr,
            )
            return 1
        except (repository.RepositoryConflict, repository.UnsafeModel) as error:
            print(f"Cannot install the NLU model of {_shown(source)} into {args.repository}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
