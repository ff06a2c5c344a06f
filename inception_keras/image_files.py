"""Image files on disk: listing a class-per-folder tree and the paths a user gives, safely.

Links are followed, but each real directory is read once and never the folder a walk started in
or one above it, so a link loop cannot repeat or mislabel images; only regular files are listed,
so a FIFO or a device named like an image is never opened.
"""

from __future__ import annotations

import os
import stat

import tensorflow as tf

from inception_keras.deprecation import renamed_arguments
from inception_keras.errors import UsageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def is_image_file(name: str) -> bool:
    return not os.path.basename(name).startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def is_local(path: str) -> bool:
    return "://" not in path


def _directory_id(path: str) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_dev, status.st_ino


def _enclosing_ids(directory: str) -> set[tuple[int, int]]:
    """``directory`` and every directory above it: a link back to one of them (``loop -> ..``)
    would make a walk list the tree again, so a walk never enters them."""
    ids, path = set(), os.path.realpath(directory)
    while True:
        ids.add(_directory_id(path))
        parent = os.path.dirname(path)
        if parent == path:
            return ids
        path = parent


def _walk_image_files(top: str, visited: set[tuple[int, int]]) -> list[str]:
    """The image files at any depth under the local directory ``top``.

    Links are followed - a data set may be linked in from elsewhere - but each real directory is
    read at most once: ``visited`` holds the ``(st_dev, st_ino)`` of directories already read or
    never to be read, and is updated. Only regular files (or links to them) are listed: a FIFO or
    a device named ``x.png`` would block or never end when read.
    """
    found, pending = [], [top]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:  # unreadable or vanished: nothing to list, as os.walk does
            continue
        for entry in entries:
            try:
                if entry.is_dir():
                    status = entry.stat()
                    key = (status.st_dev, status.st_ino)
                    if key not in visited:
                        visited.add(key)
                        pending.append(entry.path)
                elif is_image_file(entry.name) and entry.is_file():
                    found.append(entry.path)
            except OSError:  # a dangling link, or removed meanwhile
                continue
    return sorted(found)


def list_image_folder(root: str) -> dict[str, list[str]]:
    """Maps each class (sorted sub-folder name) to its sorted image files.

    A link inside a class folder to the folder itself, the root or another class folder is not
    followed: each file is listed once, under its own class.

    Raises ``ValueError`` for a missing folder, no class folders, or a class
    folder without images.
    """
    if not tf.io.gfile.isdir(root):
        raise UsageError(f"image folder {root!r} does not exist or is not a directory")
    classes = sorted(
        name.rstrip("/")
        for name in tf.io.gfile.listdir(root)
        if not name.startswith(".") and tf.io.gfile.isdir(os.path.join(root, name))
    )
    if not classes:
        raise UsageError(
            f"image folder {root!r} has no class sub-folders (expected one folder per class)"
        )
    files = {}
    if is_local(root):
        visited = _enclosing_ids(root) | {_directory_id(os.path.join(root, n)) for n in classes}
        for name in classes:
            files[name] = _walk_image_files(os.path.join(root, name), visited)
    else:  # object stores have no links to loop through
        for name in classes:
            files[name] = sorted(
                os.path.join(directory, file)
                for directory, _, names in tf.io.gfile.walk(os.path.join(root, name))
                for file in names
                if is_image_file(file)
            )
    empty = [name for name, found in files.items() if not found]
    if len(empty) == len(classes):
        raise UsageError(
            f"image folder {root!r} contains no images ({', '.join(IMAGE_EXTENSIONS)})"
        )
    if empty:
        raise UsageError(
            f"class folder(s) {empty} in {root!r} contain no images ({', '.join(IMAGE_EXTENSIONS)})"
        )
    return files


@renamed_arguments(max_bytes="max_image_bytes", max_pixels="max_image_pixels")
def file_problem(path: str, max_image_bytes: int) -> str | None:
    """Why the local file ``path`` must not be read (not a regular file, or over
    ``max_image_bytes``), or ``None``. Remote paths are checked after reading, in the graph."""
    if not is_local(path):
        return None
    status = os.stat(path)
    if not stat.S_ISREG(status.st_mode):
        return "not a regular file"
    if status.st_size > max_image_bytes:
        return f"image is {status.st_size} bytes, over the limit of {max_image_bytes} bytes"
    return None


def expand_image_paths(paths):
    """Files as given, and the image files under each given directory (sorted; links followed,
    each real directory once, only regular files).

    Returns ``(files, errors)``: ``errors`` maps each input that names no file to a reason.
    """
    files, errors = [], {}
    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            found = _walk_image_files(path, _enclosing_ids(path))
            files.extend(found)
            if not found:
                errors[path] = f"directory contains no images ({', '.join(IMAGE_EXTENSIONS)})"
        elif not os.path.exists(path):
            errors[path] = "no such file"
        elif not stat.S_ISREG(os.stat(path).st_mode):
            errors[path] = "not a regular file"  # a FIFO or device would block or never end
        elif not os.access(path, os.R_OK):
            errors[path] = "permission denied"
        else:
            files.append(path)
    return files, errors
