"""Files attached to a ticket request (`anexos`): which ones the gateway takes, judged by their content.

Plain functions, no Flask, like validation.py: the reasons are part of the public contract
(Portuguese, naming the file). A file is taken when its first bytes say it is one of the
ALLOWED_TYPES and its extension is one of that type's; executables and anything else are refused.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

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
    content: bytes
    file_type: FileType


class Refused(ValueError):
    """Why a file is not taken, in Portuguese."""


def read_attachments(
    uploads: Iterable[tuple[str, str | None, BinaryIO]], max_count: int, max_bytes: int
) -> list[Attachment]:
    """(form field, file name, stream) of each uploaded file -> the attachments to send to GLPI.

    A browser sends an empty part for a file input left empty: it is skipped. Raises
    ValidationError naming every refused file under `anexos`, and any other field that
    carried a file.
    """
    invalid: dict[str, str] = {}
    taken: list[tuple[str | None, bytes]] = []
    for field, filename, stream in uploads:
        content = stream.read(max_bytes + 1)
        if field != FIELD:
            invalid[field] = f"arquivos só são aceitos no campo {FIELD}"
        elif filename or content:
            taken.append((filename, content))
    if len(taken) > max_count:
        invalid[FIELD] = f"envie no máximo {max_count} arquivos (foram {len(taken)})"
    if invalid:
        raise ValidationError(invalid=invalid)

    attachments, problems = [], []
    for number, (filename, content) in enumerate(taken, start=1):
        name = clean_filename(filename, number)
        try:
            attachments.append(_checked(name, content, max_bytes))
        except Refused as refusal:
            problems.append(f"{name}: {refusal}")
    if problems:
        raise ValidationError(invalid={FIELD: "; ".join(problems)})
    return attachments


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


def _checked(name: str, content: bytes, max_bytes: int) -> Attachment:
    if len(content) > max_bytes:
        raise Refused(f"maior que o limite de {_size_text(max_bytes)} por arquivo")
    if not content:
        raise Refused("arquivo vazio")
    file_type = detect_type(content)
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        return Attachment(f"{name}.{file_type.extensions[0]}", content, file_type)
    if extension.lower() not in file_type.extensions:
        raise Refused(f"o conteúdo é {file_type.name}, mas a extensão é .{extension}")
    return Attachment(name, content, file_type)


def detect_type(content: bytes) -> FileType:
    """The allowed type the bytes are, or Refused saying why not."""
    if content.startswith(_EXECUTABLE_MAGIC):
        raise Refused("programas executáveis não são aceitos")
    for magic, file_type in _MAGIC:
        if content.startswith(magic):
            return file_type
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return WEBP
    if content.startswith(b"PK\x03\x04"):
        return _office_type(content)
    if _is_text(content):
        return TEXT
    raise Refused(f"tipo de arquivo não aceito; são aceitos {ACCEPTED}")


def _office_type(content: bytes) -> FileType:
    """Which Office document a ZIP is (only its directory and `mimetype` entry are read)."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
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


def _is_text(content: bytes) -> bool:
    """UTF-8, Windows-1252 or UTF-16 with its BOM (what Windows writes), without binary control bytes."""
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = content.decode("utf-16")
        except UnicodeDecodeError:
            return False
    else:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text = content.decode("latin-1")  # every byte is a character; the controls are what matter
    return _BINARY_CONTROL.search(text) is None


def _size_text(size: int) -> str:
    """Bytes as the customer reads them, rounded down: "5 MB", "1,9 KB", "900 bytes" (powers of 1024)."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            tenths = size * 10 // scale
            return f"{tenths // 10},{tenths % 10}".removesuffix(",0") + f" {unit}"
    return f"{size} bytes"
