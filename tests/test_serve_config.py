"""deploy/serve.py's nginx configuration: what it says for each process, and that nginx accepts it."""

from __future__ import annotations

import re
import subprocess

import pytest

from deploy.serve import Worker, nginx_path, render_nginx_conf


def three(tmp_path, down: bool = False):
    """Two local processes (the first down, if asked) and one on another machine."""
    workers = [Worker(f"127.0.0.1:{8621 + i}", f"w{i + 1}", down=down and i == 0) for i in range(2)]
    workers.append(Worker("10.0.0.7:8621", "w3", local=False))
    return render_nginx_conf(workers, "127.0.0.1:8620", tmp_path)


def test_each_process_is_a_group_with_the_others_as_backups(tmp_path):
    conf = three(tmp_path)
    groups = dict(re.findall(r"upstream (w\d) \{(.*?)\}", conf, re.S))
    assert sorted(groups) == ["w1", "w2", "w3"]
    for body in groups.values():
        servers = re.findall(r"server (\S+)( backup)?", body)
        primary = [a for a, backup in servers if not backup]
        backups = [a for a, backup in servers if backup]
        assert len(primary) == 1 and len(backups) == 2 and primary[0] not in backups
    assert "server 127.0.0.1:8622 max_fails" in groups["w2"] and "server 10.0.0.7:8621 max_fails" in groups["w3"]
    # the first backup differs per group, so one dead process's browsers spread over the others
    first_backups = {re.search(r"server (\S+) backup", body).group(1) for body in groups.values()}
    assert len(first_backups) == 3


def test_new_browsers_are_split_evenly_and_the_cookie_follows_the_answering_process(tmp_path):
    conf = three(tmp_path)
    assert re.findall(r"^\s+(\S+) (w\d);$", conf.split("$new_group {")[1].split("}")[0], re.M) == [
        ("33.33%", "w1"),
        ("33.33%", "w2"),
        ("*", "w3"),
    ]
    served = conf.split("map $upstream_addr $served_group")[1].split("}")[0]
    rules = re.findall(r'"~(.*)" (w\d);', served)
    assert [g for _, g in rules] == ["w1", "w2", "w3"]
    # the last address nginx tried decides (after a retry $upstream_addr lists them all)
    for addrs, group in [
        ("127.0.0.1:8621", "w1"),
        ("127.0.0.1:8621, 127.0.0.1:8622", "w2"),
        ("10.0.0.7:8621", "w3"),
        ("127.0.0.1:8622, 10.0.0.7:8621", "w3"),
    ]:
        assert [g for rx, g in rules if re.search(rx, addrs)] == [group]
    settings = "\n".join(line for line in conf.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"@[A-Z_]+@", settings)  # every placeholder filled


def test_a_dead_process_is_down_in_every_group_until_it_is_back(tmp_path):
    workers = [Worker(f"127.0.0.1:{8621 + i}", f"w{i + 1}") for i in range(3)]
    workers[1].down = True
    conf = render_nginx_conf(workers, "127.0.0.1:8620", tmp_path)
    lines = [line.strip() for line in conf.splitlines() if line.strip().startswith("server 127.")]
    assert len(lines) == 9
    assert all(line.endswith(" down;") == ("127.0.0.1:8622" in line) for line in lines)


@pytest.mark.parametrize("down", [False, True])
def test_nginx_accepts_the_configuration(tmp_path, down):
    nginx = nginx_path()
    if nginx is None:
        pytest.skip("nginx not found (Debian: apt-get install nginx)")
    (tmp_path / "nginx.conf").write_text(three(tmp_path, down))
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr


def test_the_warm_up_page_finds_the_server_from_streamlit_s_options(monkeypatch):
    """deploy/warm.py (scripts/run_app.sh) opens its page on the server `streamlit run app.py ARGS` starts."""
    from deploy.warm import server_url

    monkeypatch.delenv("STREAMLIT_SERVER_PORT", raising=False)
    assert server_url([]) == "http://127.0.0.1:8501"
    assert server_url(["--server.port", "8612", "--server.headless", "true"]) == "http://127.0.0.1:8612"
    assert server_url(["--server.port=8613", "--server.address=0.0.0.0"]) == "http://127.0.0.1:8613"
    assert server_url(["--server.address", "10.1.2.3", "--server.port", "80"]) == "http://10.1.2.3:80"
    monkeypatch.setenv("STREAMLIT_SERVER_PORT", "8614")
    assert server_url(["--server.headless", "true"]) == "http://127.0.0.1:8614"


def test_a_warm_up_with_no_server_says_so_and_fails(capsys):
    from deploy.warm import main
    from loadtest.server import free_port

    assert main(["--server.port", str(free_port())], timeout=1.0) == 1
    assert "the warm-up page did not load (TimeoutError" in capsys.readouterr().err
