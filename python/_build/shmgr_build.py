"""A PEP 517 build backend for the shmgr package, standard library only.

pip builds a package in an isolated environment and first installs the
backend's requirements there from an index; a backend such as setuptools
then has to be downloaded, and an offline ``pip install ./python`` fails.
This backend lives in the source tree (pyproject.toml's ``backend-path``)
and needs nothing outside the standard library, so the install works with
``--no-index``. It builds a pure-Python wheel (py3-none-any), an sdist, and
an editable wheel (a .pth file naming the source directory, PEP 660).
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

NAME = "shmgr"
PACKAGE = "shmgr"
SUMMARY = "Python client of shmgr, the cross-network shared memory manager (standard library only)"
REQUIRES_PYTHON = ">=3.8"
# Files of the source tree that go into an sdist besides the package.
SDIST_FILES = ["pyproject.toml", "README.md", "_build/shmgr_build.py"]


def _root():
    # PEP 517 runs every hook with the source tree as working directory.
    return os.getcwd()


def _version():
    with open(os.path.join(_root(), PACKAGE, "__init__.py"), encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([^"]+)"$', f.read(), re.M)
    if not m:
        raise RuntimeError("no __version__ in %s/__init__.py" % PACKAGE)
    return m.group(1)


def _metadata():
    readme = ""
    path = os.path.join(_root(), "README.md")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            readme = f.read()
    lines = [
        "Metadata-Version: 2.1",
        "Name: " + NAME,
        "Version: " + _version(),
        "Summary: " + SUMMARY,
        "Requires-Python: " + REQUIRES_PYTHON,
        "Classifier: Programming Language :: Python :: 3",
        "Classifier: Typing :: Typed",
        "Description-Content-Type: text/markdown",
        "",
        readme,
    ]
    return "\n".join(lines).encode("utf-8")


def _wheel_file(tag="py3-none-any"):
    return ("Wheel-Version: 1.0\nGenerator: shmgr_build\nRoot-Is-Purelib: true\nTag: %s\n" % tag).encode("ascii")


def _dist_info():
    return "%s-%s.dist-info" % (NAME, _version())


def _package_files():
    base = os.path.join(_root(), PACKAGE)
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(dirpath, name)
            out.append((os.path.relpath(full, _root()).replace(os.sep, "/"), full))
    return out


def _date_time():
    # Reproducible when SOURCE_DATE_EPOCH is set; zip cannot go before 1980.
    t = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
    return time.gmtime(max(t, 315532800))[:6]


def _write_wheel(wheel_directory, entries):
    """Writes a wheel of entries [(archive name, bytes)] plus its
    dist-info, and returns its file name."""
    di = _dist_info()
    entries = list(entries) + [
        (di + "/METADATA", _metadata()),
        (di + "/WHEEL", _wheel_file()),
        (di + "/top_level.txt", (PACKAGE + "\n").encode("ascii")),
    ]
    record = []
    for name, data in entries:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
        record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
    record.append(di + "/RECORD,,")
    entries.append((di + "/RECORD", ("\n".join(record) + "\n").encode("utf-8")))
    filename = "%s-%s-py3-none-any.whl" % (NAME, _version())
    dt = _date_time()
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            zi = zipfile.ZipInfo(name, dt)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data)
    return filename


def _read(path):
    with open(path, "rb") as f:
        return f.read()


# The PEP 517 and PEP 660 hooks.


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    di = _dist_info()
    os.makedirs(os.path.join(metadata_directory, di), exist_ok=True)
    for name, data in (("METADATA", _metadata()), ("WHEEL", _wheel_file())):
        with open(os.path.join(metadata_directory, di, name), "wb") as f:
            f.write(data)
    return di


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, [(name, _read(full)) for name, full in _package_files()])


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = (os.path.abspath(_root()) + "\n").encode("utf-8")
    return _write_wheel(wheel_directory, [("_%s_editable.pth" % PACKAGE, pth)])


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, _version())
    filename = base + ".tar.gz"
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
    files = [(rel, os.path.join(_root(), rel)) for rel in SDIST_FILES if os.path.exists(os.path.join(_root(), rel))]
    files += _package_files()

    def add(tf, name, data):
        ti = tarfile.TarInfo(base + "/" + name)
        ti.size = len(data)
        ti.mtime = mtime
        ti.mode = 0o644
        tf.addfile(ti, io.BytesIO(data))

    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for rel, full in files:
            add(tf, rel, _read(full))
        add(tf, "PKG-INFO", _metadata())
    return filename
