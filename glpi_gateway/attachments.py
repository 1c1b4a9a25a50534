"""Files attached to a ticket request (`anexos`): which ones the gateway takes, judged by their content.

Plain functions, no Flask, like validation.py: the reasons are part of the public contract
(Portuguese, naming the file). A file is taken when its first bytes say it is one of the
ALLOWED_TYPES and its extension is one of that type's; executables and anything else are refused.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from config import Config
from glpi_gateway.validation import INVISIBLE_FORMAT_CHARS, ValidationError

FIELD = "anexos"
MAX_FILENAME_LENGTH = 150  # GLPI prefixes 23 characters, and file systems stop at 255 bytes
# Control and invisible characters, path separators and the quote and backslash: GLPI versions that
# pass the upload manifest through PHP's stripcslashes() would break on a backslash in it.
_UNSAFE_NAME_CHARS = re.compile(rf'[\x00-\x1f\x7f-\x9f{INVISIBLE_FORMAT_CHARS}"\\]')
# Bytes no text file holds (tab, line feed, form feed, carriage return and ESC, for coloured logs, are fine).
_BINARY_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")


@dataclass(frozen=True)
class FileType:
    name: str  # as the customer reads it in a message
    mime: str
    extensions: tuple[str, ...]  # the first one is added to a file name without extension


PNG = FileType("PNG", "image/png", ("png",))
JPEG = FileType("JPEG", "image/jpeg", ("jpg", "jpeg"))
GIF = FileType("GIF", "image/gif", ("gif",))
WEBP = FileType("WebP", "image/webp", ("webp",))
PDF = FileType("PDF", "application/pdf", ("pdf",))
TEXT = FileType("texto", "text/plain", ("txt", "log", "csv"))
DOCX = FileType("Word", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("docx",))
XLSX = FileType("Excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ("xlsx",))
PPTX = FileType("PowerPoint", "application/vnd.openxmlformats-officedocument.presentationml.presentation", ("pptx",))
ODT = FileType("OpenDocument Texto", "application/vnd.oasis.opendocument.text", ("odt",))
ODS = FileType("OpenDocument Planilha", "application/vnd.oasis.opendocument.spreadsheet", ("ods",))
ODP = FileType("OpenDocument Apresentação", "application/vnd.oasis.opendocument.presentation", ("odp",))
ALLOWED_TYPES = (PNG, JPEG, GIF, WEBP, PDF, TEXT, DOCX, XLSX, PPTX, ODT, ODS, ODP)
ACCEPTED = ", ".join(f"{file_type.name} (.{', .'.join(file_type.extensions)})" for file_type in ALLOWED_TYPES)

_MAGIC = ((b"\x89PNG\r\n\x1a\n", PNG), (b"\xff\xd8\xff", JPEG), (b"GIF87a", GIF), (b"GIF89a", GIF), (b"%PDF-", PDF))
# Windows (MZ), Linux (ELF) and macOS (Mach-O, also universal binaries) programs.
_EXECUTABLE_MAGIC = (
    b"MZ",
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
)
# Office documents are ZIP files: OOXML names its parts in [Content_Types].xml and keeps them in a
# folder per application; OpenDocument starts with a `mimetype` entry.
_OOXML_FOLDERS = (("word/", DOCX), ("xl/", XLSX), ("ppt/", PPTX))
_OPENDOCUMENT = {file_type.mime: file_type for file_type in (ODT, ODS, ODP)}


@dataclass(frozen=True)
class Attachment:
    filename: str
    # The bytes, or a seekable file (an upload Werkzeug spooled to disk): sent from its start.
    content: bytes | IO[bytes]
    file_type: FileType


class Refused(ValueError):
    """Why a file is not taken, in Portuguese."""


# Retry-After of the answer to a multipart request beyond the cap: an upload takes seconds.
UPLOADS_BUSY_RETRY_AFTER = 5


class UploadsBusy(Exception):
    """This process already handles as many multipart requests as it may (MULTIPART_MAX_IN_FLIGHT)."""


class UploadSlots:
    """At most `limit` multipart requests at once in this process; the next ones are refused, not queued.

    A refused client retries after Retry-After; waiting here would hold a thread and the
    client's upload, which is what the cap is there to bound.
    """

    def __init__(self, limit: int) -> None:
        self._slots = threading.BoundedSemaphore(limit)

    def __enter__(self) -> UploadSlots:
        if not self._slots.acquire(blocking=False):
            raise UploadsBusy()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._slots.release()


# Enough for every magic number, the executable check and a text file's first look.
HEAD_BYTES = 8192
_TEXT_CHUNK = 64 * 1024

# The safer set for the public form key (FORM_API_KEY_NAME): no ZIP containers, nothing with macros.
FORM_TYPES = (PNG, JPEG, GIF, WEBP, PDF, TEXT)


@dataclass(frozen=True)
class UploadLimits:
    """What one caller may upload in one request: the server checks these, the form shows them."""

    max_body_bytes: int
    max_count: int
    max_bytes: int
    types: tuple[FileType, ...]

    @property
    def extensions(self) -> list[str]:
        return [extension for file_type in self.types for extension in file_type.extensions]


def upload_limits(config: Config, public_form: bool) -> UploadLimits:
    """The public form key's smaller limits and safer types, or everybody else's."""
    if public_form:
        return UploadLimits(
            config.form_max_multipart_body_bytes,
            config.form_attachments_max_count,
            config.form_attachments_max_bytes,
            FORM_TYPES,
        )
    return UploadLimits(
        config.max_multipart_body_bytes, config.attachments_max_count, config.attachments_max_bytes, ALLOWED_TYPES
    )


def read_attachments(
    uploads: Iterable[tuple[str, str | None, IO[bytes]]],
    max_count: int,
    max_bytes: int,
    allowed: tuple[FileType, ...] = ALLOWED_TYPES,
) -> list[Attachment]:
    """(form field, file name, stream) of each uploaded file -> the attachments to send to GLPI, in memory.

    A browser sends an empty part for a file input left empty: it is skipped. Raises
    ValidationError naming every refused file under `anexos`, and any other field that
    carried a file.
    """
    return [
        Attachment(a.filename, a.content.read() if not isinstance(a.content, bytes) else a.content, a.file_type)
        for a in take_attachments(uploads, max_count, max_bytes, allowed)
    ]


def take_attachments(
    uploads: Iterable[tuple[str, str | None, IO[bytes]]],
    max_count: int,
    max_bytes: int,
    allowed: tuple[FileType, ...] = ALLOWED_TYPES,
) -> list[Attachment]:
    """Like read_attachments, but each attachment keeps its stream: only the first bytes of a
    file (and a ZIP's directory) are read to judge it, so memory does not grow with the files.

    A stream that cannot seek is read into memory (up to `max_bytes` + 1).
    """
    invalid: dict[str, str] = {}
    taken: list[tuple[str | None, IO[bytes], int]] = []
    for field, filename, stream in uploads:
        stream, size = _seekable(stream, max_bytes)
        if field != FIELD:
            invalid[field] = f"arquivos só são aceitos no campo {FIELD}"
        elif filename or size:
            taken.append((filename, stream, size))
    if len(taken) > max_count:
        invalid[FIELD] = f"envie no máximo {max_count} arquivos (foram {len(taken)})"
    if invalid:
        raise ValidationError(invalid=invalid)

    attachments, problems = [], []
    for number, (filename, stream, size) in enumerate(taken, start=1):
        name = clean_filename(filename, number)
        try:
            attachments.append(_checked(name, stream, size, max_bytes, allowed))
        except Refused as refusal:
            problems.append(f"{name}: {refusal}")
    if problems:
        raise ValidationError(invalid={FIELD: "; ".join(problems)})
    return attachments


def _seekable(stream: IO[bytes], max_bytes: int) -> tuple[IO[bytes], int]:
    """The stream (rewound) and its size, without reading it when it can seek."""
    try:
        return stream, content_size(stream)
    except (AttributeError, OSError, ValueError):
        content = stream.read(max_bytes + 1)
        return io.BytesIO(content), len(content)


def clean_filename(filename: str | None, number: int) -> str:
    """The name without a client's path, invisible characters or quotes, shortened; `anexo-N` if none is left."""
    name = _UNSAFE_NAME_CHARS.sub("", re.split(r"[/\\]", filename or "")[-1]).strip()
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and len(extension) <= 10:
            name = f"{stem[: MAX_FILENAME_LENGTH - len(extension) - 1]}.{extension}"
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name if name.strip(".") else f"anexo-{number}"


def _checked(
    name: str, stream: IO[bytes], size: int, max_bytes: int, allowed: tuple[FileType, ...] = ALLOWED_TYPES
) -> Attachment:
    if size > max_bytes:
        raise Refused(f"maior que o limite de {_size_text(max_bytes)} por arquivo")
    if not size:
        raise Refused("arquivo vazio")
    file_type = detect_type_of(stream, allowed)
    stream.seek(0)
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        return Attachment(f"{name}.{file_type.extensions[0]}", stream, file_type)
    if extension.lower() not in file_type.extensions:
        raise Refused(f"o conteúdo é {file_type.name}, mas a extensão é .{extension}")
    return Attachment(name, stream, file_type)


def file_type_of(mime: str) -> FileType:
    """The allowed type of this MIME type (a file queued as one of ALLOWED_TYPES)."""
    return next((file_type for file_type in ALLOWED_TYPES if file_type.mime == mime), FileType(mime, mime, ()))


def content_size(content: bytes | IO[bytes]) -> int:
    if isinstance(content, bytes):
        return len(content)
    content.seek(0, io.SEEK_END)
    size = content.tell()
    content.seek(0)
    return size


def sha256_of(content: bytes | IO[bytes]) -> str:
    """The SHA-256 of a file's bytes, read in chunks from its start (a stream is rewound after)."""
    if isinstance(content, bytes):
        return hashlib.sha256(content).hexdigest()
    digest = hashlib.sha256()
    content.seek(0)
    while chunk := content.read(_TEXT_CHUNK):
        digest.update(chunk)
    content.seek(0)
    return digest.hexdigest()


def detect_type(content: bytes, allowed: tuple[FileType, ...] = ALLOWED_TYPES) -> FileType:
    """The allowed type the bytes are, or Refused saying why not."""
    return detect_type_of(io.BytesIO(content), allowed)


def detect_type_of(stream: IO[bytes], allowed: tuple[FileType, ...] = ALLOWED_TYPES) -> FileType:
    """The allowed type a seekable file is, reading its first bytes (a ZIP's directory, a text file in chunks)."""
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    if head.startswith(_EXECUTABLE_MAGIC):
        raise Refused("programas executáveis não são aceitos")
    try:
        file_type: FileType | None = _sniff(stream, head)
    except Refused:
        if allowed == ALLOWED_TYPES:
            raise
        file_type = None  # the reason would name types this caller does not take
    if file_type not in allowed:
        accepted = ", ".join(f"{t.name} (.{', .'.join(t.extensions)})" for t in allowed)
        raise Refused(f"tipo de arquivo não aceito; são aceitos {accepted}")
    return file_type


def _sniff(stream: IO[bytes], head: bytes) -> FileType:
    for magic, file_type in _MAGIC:
        if head.startswith(magic):
            return file_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"PK\x03\x04"):
        return _office_type(stream)
    if _is_text(stream):
        return TEXT
    raise Refused(f"tipo de arquivo não aceito; são aceitos {ACCEPTED}")


def _office_type(stream: IO[bytes]) -> FileType:
    """Which Office document a ZIP is (only its directory and `mimetype` entry are read)."""
    stream.seek(0)
    try:
        with zipfile.ZipFile(stream) as archive:
            names = archive.namelist()
            if names and names[0] == "mimetype":
                with archive.open("mimetype") as entry:
                    file_type = _OPENDOCUMENT.get(entry.read(100).decode("ascii", "replace").strip())
                macros = any(name.startswith(("Basic/", "Scripts/")) for name in names)
            else:
                folders = [
                    file_type for folder, file_type in _OOXML_FOLDERS if any(name.startswith(folder) for name in names)
                ]
                file_type = folders[0] if "[Content_Types].xml" in names and len(folders) == 1 else None
                macros = any(name.endswith("vbaProject.bin") for name in names)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, ValueError):
        file_type, macros = None, False
    if file_type is None:
        raise Refused(f"arquivos ZIP só são aceitos como documentos do Office; são aceitos {ACCEPTED}")
    if macros:
        raise Refused("documentos com macros não são aceitos")
    return file_type


def _is_text(stream: IO[bytes]) -> bool:
    """UTF-8, Windows-1252 or UTF-16 with its BOM (what Windows writes), without binary control bytes.

    Read in chunks through an incremental decoder: the whole file is judged, never held.
    """
    stream.seek(0)
    start = stream.read(2)
    if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        encodings = ["utf-16"]
    else:
        # Not UTF-8: every byte is a Windows-1252/latin-1 character; the controls are what matter.
        encodings = ["utf-8", "latin-1"]
    for encoding in encodings:
        stream.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while True:
                chunk = stream.read(_TEXT_CHUNK)
                text = decoder.decode(chunk, final=not chunk)
                if _BINARY_CONTROL.search(text):
                    return False
                if not chunk:
                    return True
        except UnicodeDecodeError:
            continue
    return False


def _size_text(size: int) -> str:
    """Bytes as the customer reads them, rounded down: "5 MB", "1,9 KB", "900 bytes" (powers of 1024)."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            tenths = size * 10 // scale
            return f"{tenths // 10},{tenths % 10}".removesuffix(",0") + f" {unit}"
    return f"{size} bytes"
