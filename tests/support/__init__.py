"""What the tests share: fixtures (`fixtures.py`, registered for every folder by
tests/conftest.py), the end-to-end stack as plain helpers (`stack.py`: settings, a served
API, an in-process worker, clients, waiting), and event-stream helpers (`events.py`).
Folders import helpers from here, never from another folder's conftest."""
