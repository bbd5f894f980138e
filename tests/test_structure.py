"""The shape of the package: imports point one way (STYLE.md), the shipped
config matches the built-in defaults, every command has its launcher."""

import ast
import sys
import configparser
from pathlib import Path

import pytest
import yaml

from gsat import config

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "gsat"

# lower layers may never import higher ones
LAYERS = [
    {"errors", "states", "messages", "config", "configcheck", "layout", "trust", "signames", "options", "record",
     "jsontext", "paths", "text", "timefmt", "crashpoint",
     "lazylog", "sigstatus"},
    {"fsutil", "damage", "procinfo", "watch", "spool", "fifo", "channel", "channel_sysv", "daemon", "logfile",
     "heartbeat", "procstats", "summary", "mailparse", "gpgrun", "pgppackets", "openpgp", "mailstate",
     "mailsources"},
    {"jobs", "jobtypes", "environment", "shepherd", "spare", "scheduler", "eventlog", "submit",
     "recovery", "mishap", "guard", "waiting", "client", "services", "follow", "mailer", "dispatcher", "killing", "arrays",
     "mailactions", "mailreply"},
    {"controller", "runs", "mailgate"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def gsat_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gsat"):
            parts = node.module.split(".")
            if len(parts) > 1:
                names.add(parts[1])
            else:
                names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("gsat."))
    return names


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else path.stem


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_down(path):
    me = module_name(path)
    if me == "__init__":
        return
    assert me in RANK, f"{me} is in no layer of this test"
    for other in gsat_imports(path) - {me, "__version__"}:
        assert other in RANK, f"{path.name} imports unknown module {other}"
        assert RANK[other] <= RANK[me], f"{path.name} ({me}) imports {other}, a higher layer"


def test_cli_imports_the_controller_only_in_gsatlc():
    for path in (PKG / "cli").glob("*.py"):
        uses = "controller" in gsat_imports(path) or "mailgate" in gsat_imports(path)
        assert not uses or path.stem in ("gsatlc", "mailgate"), path.name


CONTROLLER_SIDE, MAIL_SIDE = {"controller", "runs"}, {"mailgate"}


def files_of(module: str) -> list[Path]:
    """The file of a module, or every file of a package of that name."""
    path = PKG / f"{module}.py"
    return [path] if path.is_file() else sorted((PKG / module).rglob("*.py"))


def test_controller_and_mailgate_never_import_each_other():
    # every module of the orchestration layer is on one side: a new or renamed one must say which
    assert LAYERS[3] == CONTROLLER_SIDE | MAIL_SIDE
    for side, other in ((CONTROLLER_SIDE, MAIL_SIDE), (MAIL_SIDE, CONTROLLER_SIDE)):
        for module in side:
            assert files_of(module), f"gsat/{module} is gone: name where it went here"
            for path in files_of(module):
                assert not gsat_imports(path) & other, f"{path.name} imports {gsat_imports(path) & other}"


def test_shipped_config_is_the_defaults():
    shipped = yaml.safe_load((ROOT / "etc" / "gsat.yaml").read_text())
    assert shipped == config.DEFAULTS


def test_every_command_is_installed_from_a_lean_launcher_in_bin():
    """setup.cfg installs bin/NAME as scripts (not console_scripts, whose wrapper imports re)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    scripts = [line.strip() for line in cfg["options"]["scripts"].strip().splitlines()]
    assert "options.entry_points" not in cfg
    names = {Path(script).name for script in scripts}
    for required in ("gqsub", "gqstat", "gqdel", "gqhold", "gqrls", "gqsig", "gqwait",
                     "gqpeek", "gsatlc", "gsatctl", "sendcmd", "gsat-mailgate"):
        assert required in names
    for script in scripts:
        text = (ROOT / script).read_text()
        assert text.startswith("#!/usr/bin/env python3\n") and "\nimport re" not in text, script
        assert (Path(sys.executable).parent / Path(script).name).is_file(), f"{script} is not installed"

def test_every_shipped_data_file_is_installed_under_share_gsat():
    """A non-editable install finds etc/ and libexec/ in sys.prefix/share/gsat (config.share_dir)."""
    cfg = configparser.ConfigParser()
    cfg.optionxform = str  # as setuptools reads it: the folders' case matters
    cfg.read(ROOT / "setup.cfg")
    installed = set()
    for target, sources in cfg["options.data_files"].items():
        for source in sources.replace("\n", ",").split(","):
            if source.strip():
                assert target == "share/gsat/" + str(Path(source.strip()).parent), (target, source)
                installed.add(source.strip())
    shipped = {str(p.relative_to(ROOT)) for folder in ("etc", "libexec") for p in (ROOT / folder).rglob("*")
               if p.is_file()}
    assert shipped == installed
