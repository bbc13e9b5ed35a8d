"""Fakes of the outside world for tests: ``provider.FakeProvider`` is a scriptable LLM provider on loopback."""
