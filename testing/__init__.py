"""Helpers shared by the tests and the benchmarks: the app as a process on 127.0.0.1, its raw REST path, bounded
polling, process accounting, percentiles and headless Chromium. Tests and bench import this; it imports neither."""
