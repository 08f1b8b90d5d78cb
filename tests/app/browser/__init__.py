"""Helpers for tests that drive the FiftyOne App in Debian's Chromium through Playwright."""
