"""The client side of per-project settings: finding and reading ``.ccrouter.yaml``, and its headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccrouter.errors import ConfigError
from ccrouter.projects import ProjectFile, find_project_file, load_project, project_headers


def test_the_nearest_file_upward_is_found_and_the_search_stops_at_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    deep = home / "work" / "api" / "src" / "pkg"
    deep.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    assert find_project_file(deep) is None
    (tmp_path / ".ccrouter.yaml").write_text("profile: above-home\n")  # above $HOME: never read
    assert find_project_file(deep) is None
    (home / "work" / "api" / ".ccrouter.yaml").write_text("profile: cheap\n")
    assert find_project_file(deep) == home / "work" / "api" / ".ccrouter.yaml"
    (deep / ".ccrouter.yaml").write_text("{}\n")
    assert find_project_file(deep) == deep / ".ccrouter.yaml"


def test_outside_home_the_search_ends_at_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "elsewhere"))
    (tmp_path / ".ccrouter.yaml").write_text("{}\n")
    start = tmp_path / "a" / "b"
    start.mkdir(parents=True)
    assert find_project_file(start) == tmp_path / ".ccrouter.yaml"


def test_a_file_gives_the_project_its_directory_name_and_headers(tmp_path: Path) -> None:
    folder = tmp_path / "billing api"
    folder.mkdir()
    path = folder / ".ccrouter.yaml"
    path.write_text(
        "profile: cheap\nroutes:\n  think: deepseek,deepseek-reasoner\n  subagent: groq, llama-3\n"
    )
    project = load_project(path)
    assert project == ProjectFile(
        project="billing-api",
        profile="cheap",
        routes={"think": "deepseek,deepseek-reasoner", "subagent": "groq,llama-3"},
    )
    assert project_headers(project) == {
        "x-ccrouter-project": "billing-api",
        "x-ccrouter-profile": "cheap",
        "x-ccrouter-routes": "think=deepseek,deepseek-reasoner;subagent=groq,llama-3",
    }
    assert project_headers(ProjectFile(project="p")) == {"x-ccrouter-project": "p"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profle: cheap\n", "profle: unknown key"),
        ("routes: {thinking: 'a,b'}\n", "unknown scenario 'thinking'"),
        ("routes: {think: nocomma}\n", "expected 'provider,model'"),
        ("routes: {think: 'a,b;c=d'}\n", "use letters, digits"),
        ("profile: 'two words'\n", "profile:"),
        ("project: 'x\\r\\nset-cookie: y'\n", "project:"),
        ("- a\n", "expected a mapping"),
        ("routes: [\n", "not valid YAML"),
    ],
)
def test_bad_files_are_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / ".ccrouter.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_project(path)
    assert message in caught.value.message
    assert str(path) in caught.value.message


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / ".ccrouter.yaml"
    path.write_text("# " + "x" * 70_000 + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_project(path)
