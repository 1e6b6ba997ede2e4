"""Secrets reach the setup script over the bootstrap's standard input: a root-only file
beside the script that the script sources and deletes before the setup runs; never on a
command line, never in the script file, never left behind by a start that lost the race."""

from __future__ import annotations

from app.ssh.script import SECRETS_FILE, render_script, render_secrets
from tests.ssh.test_bootstrap import session, wait_until_done

AWKWARD = "a'b\"c $HOME `id` $(id)\\n\nsecond line\t end "


async def test_the_setup_sees_the_values_and_nothing_stays_on_disk(pod, keypair) -> None:
    secrets = {"TOKEN": "hf_secret_value_123", "AWKWARD": AWKWARD}
    setup = (
        'ls -A "$HOME/.hangar" > "$HOME/listing"\n'
        'stat -c %a "$HOME/.hangar" > "$HOME/mode"\n'
        'printf %s "$AWKWARD" > "$HOME/awkward"\n'
        'echo "token=$TOKEN env=$PLAIN"\n'
    )
    script = render_script(setup, {"PLAIN": "p"}, with_secrets=True)
    async with session(pod, keypair) as s:
        assert await s.start(script, render_secrets(secrets)) is True
        progress = await wait_until_done(s)
    assert progress.exit_code == 0
    assert progress.data == b"token=hf_secret_value_123 env=p\n"  # the raw log, on the pod
    assert (pod.home / "awkward").read_text() == AWKWARD
    listing = (pod.home / "listing").read_text().split()
    assert SECRETS_FILE not in listing and not [f for f in listing if "upload" in f]
    assert (pod.home / "mode").read_text().strip() == "700"
    on_disk = (pod.home / ".hangar" / "script.sh").read_text()
    assert "hf_secret_value_123" not in on_disk and "second line" not in on_disk
    assert not any("hf_secret_value_123" in c for c in pod.commands)


async def test_a_start_that_loses_leaves_no_secrets_behind(pod, keypair) -> None:
    script = render_script("sleep 0.3; echo $TOKEN", {}, with_secrets=True)
    async with session(pod, keypair) as s:
        assert await s.start(script, render_secrets({"TOKEN": "first"})) is True
        assert await s.start(script, render_secrets({"TOKEN": "second"})) is False
        progress = await wait_until_done(s)
    assert progress.data == b"first\n"
    left = sorted(p.name for p in (pod.home / ".hangar").iterdir())
    assert SECRETS_FILE not in left and not [n for n in left if "upload" in n], left


async def test_without_secrets_the_script_is_as_before(pod, keypair) -> None:
    script = render_script("echo plain", {"A": "1"})
    assert "secrets" not in script
    async with session(pod, keypair) as s:
        assert await s.start(script) is True
        assert (await wait_until_done(s)).data == b"plain\n"
