"""The receiver code in docs/integrations.md verifies what the product signs."""

import re
import time

from notifications.signing import signature_header
from tests.devices.live import REPO


def test_the_documented_receiver_verifies_a_signed_body():
    text = (REPO / "docs" / "integrations.md").read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify" in c]
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 (the documented code itself)
    verify = namespace["verify_eyescream_signature"]
    body = b'{"type":"alert.opened","version":1}'
    header = signature_header("hub-secret", body)
    assert verify("hub-secret", header, body)
    assert not verify("other", header, body)
    assert not verify("hub-secret", header, body.replace(b"1", b"2"))
    old = signature_header("hub-secret", body, timestamp=int(time.time()) - 600)
    assert not verify("hub-secret", old, body)
