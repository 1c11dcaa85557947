"""Loading a project for publishing (no registry): `files` expansion, URL sources, `--build`, the tool
table's publish keys, and errors that name the project, component and file."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest
from publishlib import wagi_wasm, write_project

from reconciler.publish.errors import BuildError, PublishError, SourceFetchError
from reconciler.publish.publisher import Target, load_project
from renderers.discovery import discover

WASM = wagi_wasm("hi")


def _project(tmp_path: Path, component_extra: str, files: dict[str, str] | None = None) -> Path:
    project = tmp_path / "p"
    project.mkdir(parents=True, exist_ok=True)
    (project / "p.wasm").write_bytes(WASM)
    for rel, text in (files or {}).items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    (project / "spin.toml").write_text(
        textwrap.dedent("""\
            spin_manifest_version = 2
            [application]
            name = "p"
            [[trigger.http]]
            route = "/..."
            component = "p"
            [component.p]
            source = "p.wasm"
            """)
        + component_extra
    )
    return project / "spin.toml"


TREE = {
    "web/index.html": "i",
    "web/css/site.css": "c",
    "web/.hidden": "h",
    "notes.txt": "n",
    "img/a.png": "a",
}


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ('files = ["notes.txt"]', {"notes.txt": "notes.txt"}),
        (
            'files = ["web"]',
            {
                "web/index.html": "web/index.html",
                "web/css/site.css": "web/css/site.css",
                "web/.hidden": "web/.hidden",
            },
        ),
        (
            'files = ["web/**/*.css", "img/*"]',
            {"web/css/site.css": "web/css/site.css", "img/a.png": "img/a.png"},
        ),
        (
            'files = [{ source = "web", destination = "/site" }]',
            {
                "site/index.html": "web/index.html",
                "site/css/site.css": "web/css/site.css",
                "site/.hidden": "web/.hidden",
            },
        ),
        (
            'files = [{ source = "web", destination = "/" }]',
            {"index.html": "web/index.html", "css/site.css": "web/css/site.css", ".hidden": "web/.hidden"},
        ),
        ('files = [{ source = "notes.txt", destination = "/etc/motd" }]', {"etc/motd": "notes.txt"}),
        (
            'files = ["web"]\nexclude_files = ["web/css/*", "**/.hidden"]',
            {"web/index.html": "web/index.html"},
        ),
    ],
)
def test_files_are_laid_out_as_spin_copies_them(tmp_path: Path, files: str, expected: dict[str, str]) -> None:
    spin_toml = _project(tmp_path, files + "\n", TREE)
    loaded = load_project(spin_toml, tmp_path)
    got = {guest: shipped.source for guest, shipped in loaded.contents["p"].files.items()}
    assert got == expected


def test_url_source_is_fetched_and_checked_against_its_digest(tmp_path: Path) -> None:
    remote = tmp_path / "remote.wasm"
    remote.write_bytes(WASM)
    good = "sha256:" + hashlib.sha256(WASM).hexdigest()
    spin_toml = _project(tmp_path, "")
    text = spin_toml.read_text().replace(
        'source = "p.wasm"', f'source = {{ url = "{remote.as_uri()}", digest = "{good}" }}'
    )
    spin_toml.write_text(text)
    loaded = load_project(spin_toml, tmp_path)
    assert loaded.contents["p"].wasm == WASM and loaded.contents["p"].wasm_path is None

    spin_toml.write_text(text.replace(good, "sha256:" + "0" * 64))
    with pytest.raises(SourceFetchError) as caught:
        load_project(spin_toml, tmp_path)
    message = str(caught.value)
    assert "p/spin.toml: component 'p'" in message and good in message and "0" * 64 in message


def test_build_runs_in_workdir_and_a_failure_names_command_and_status(tmp_path: Path) -> None:
    spin_toml = _project(
        tmp_path, '[component.p.build]\ncommand = ["echo building", "python3 make.py"]\nworkdir = "src"\n'
    )
    (tmp_path / "p" / "src").mkdir()
    (tmp_path / "p" / "src" / "make.py").write_text(
        f"import pathlib\npathlib.Path('../p.wasm').write_bytes(bytes.fromhex('{WASM.hex()}'))\n"
    )
    (tmp_path / "p" / "p.wasm").unlink()
    loaded = load_project(spin_toml, tmp_path, build=True)
    assert loaded.contents["p"].wasm == WASM
    assert "[p] building" in loaded.build_output

    spin_toml.write_text(spin_toml.read_text().replace('"echo building"', '"echo oops >&2; exit 3"'))
    with pytest.raises(BuildError) as caught:
        load_project(spin_toml, tmp_path, build=True)
    assert "component 'p'" in str(caught.value) and "exited with status 3" in str(caught.value)
    assert "echo oops" in str(caught.value) and "oops" in str(caught.value).split("ends:")[1]


@pytest.mark.parametrize(
    ("extra", "files", "needle"),
    [
        ('files = ["missing.txt"]', {}, "component 'p': files entry 'missing.txt' does not exist"),
        ('files = [{ source = "gone", destination = "/x" }]', {},
         "component.p.files[0].source (Spin app p): files"),
        ("", {}, ""),
    ],
)
def test_errors_name_the_project_component_and_file(
    tmp_path: Path, extra: str, files: dict[str, str], needle: str
) -> None:
    spin_toml = _project(tmp_path, extra + "\n", files)
    if not needle:  # a source that is not Wasm
        (tmp_path / "p" / "p.wasm").write_text("(module)")
        needle = "component 'p': the source is not a Wasm binary"
    with pytest.raises(PublishError) as caught:
        load_project(spin_toml, tmp_path)
    assert str(caught.value).startswith("p/spin.toml") and needle in str(caught.value)


def test_a_file_symlinked_out_of_the_checkout_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("s")
    root = tmp_path / "repo"
    spin_toml = _project(root, 'files = ["link.txt"]\n')
    (root / "p" / "link.txt").symlink_to(outside)
    with pytest.raises(PublishError, match="leads out of the checkout"):
        load_project(spin_toml, root)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/team/app", ("127.0.0.1:5000/team/app", None)),
        ("127.0.0.1:5000/team/app:v1", ("127.0.0.1:5000/team/app", "v1")),
        ("ghcr.io/org/app", ("ghcr.io/org/app", None)),
    ],
)
def test_targets(text: str, expected: tuple[str, str | None]) -> None:
    target = Target.parse(text)
    assert (target.repository.name, target.tag) == expected


@pytest.mark.parametrize(
    ("text", "fmt", "needle"),
    [
        ("r.io/a@sha256:" + "a" * 64, "spin", "not a digest"),
        ("R.io/Bad Name", "spin", "image reference"),
        ("r.io/a", "docker", "must be one of spin, rootfs"),
    ],
)
def test_bad_targets(text: str, fmt: str, needle: str) -> None:
    with pytest.raises(PublishError, match=needle):
        Target.parse(text, fmt=fmt)


@pytest.mark.parametrize(
    ("tool", "needle"),
    [
        ('image = "r.io/a:1"\npublish = "r.io/a"', "give either image or publish"),
        ('publish = "r.io/a@sha256:' + "a" * 64 + '"', "must be a repository"),
        ('publish = "r.io/a"\npublish_format = "tar"', "publish_format 'tar' must be one of spin, rootfs"),
        ('publish_format = "spin"\nimage = "r.io/a:1"', "publish_format needs publish"),
        ("publish = 3", "publish must be a string"),
    ],
)
def test_tool_table_publish_keys_are_checked_at_their_line(tmp_path: Path, tool: str, needle: str) -> None:
    project = write_project(tmp_path, "t", "x")
    text = (
        (project / "spin.toml")
        .read_text()
        .replace("[[trigger.http]]", f"[application.tool.spindle]\n{tool}\n\n[[trigger.http]]", 1)
    )
    (project / "spin.toml").write_text(text)
    errors = [str(e) for e in discover(tmp_path).errors]
    assert any(needle in e and "apps/t/spin.toml:" in e for e in errors), errors


def test_a_publishing_project_renders_unpinned_until_published(tmp_path: Path) -> None:
    write_project(tmp_path, "u", "x", publish="r.example.com/team/u")
    tree = discover(tmp_path)
    assert not tree.errors
    (app,) = [d for d in tree.scaffolded if d.kind == "SpinApp"]
    assert app.body["spec"]["image"] == "r.example.com/team/u"
    assert app.body["metadata"]["name"] == "u"
