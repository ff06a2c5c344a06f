"""Runs a command with its combined output in a file, then writes its exit status to another
file, last and atomically: a process waiting for the status file then finds the whole log.

Run as ``python tests/_logged_run.py LOG STATUS COMMAND...``; tests/conftest.py starts the
quickstart's training this way, in the background, for the tests that share it.
"""

import os
import subprocess
import sys


def main(log, status, *command):
    with open(log, "w") as output:
        returncode = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT).returncode
    with open(status + ".tmp", "w") as f:
        f.write(str(returncode))
    os.replace(status + ".tmp", status)


if __name__ == "__main__":
    main(*sys.argv[1:])
