"""Contract of attachments.py: which files the gateway takes, judged by their bytes, and why it refuses the others."""

from __future__ import annotations

import io
import zipfile

import pytest

from glpi_gateway.attachments import (
    DOCX,
    FORM_TYPES,
    GIF,
    HEAD_BYTES,
    JPEG,
    ODS,
    ODT,
    PDF,
    PNG,
    PPTX,
    TEXT,
    WEBP,
    XLSX,
    Refused,
    clean_filename,
    detect_type,
    read_attachments,
    take_attachments,
)
from glpi_gateway.validation import ValidationError

PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
PE_BYTES = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(64)


def zipped(*entries: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries:
            archive.writestr(name, content)
    return buffer.getvalue()


def ooxml(folder: str, *extra: str) -> bytes:
    return zipped(
        ("[Content_Types].xml", b"<Types/>"), (f"{folder}/document.xml", b"<x/>"), *((name, b"x") for name in extra)
    )


def opendocument(mimetype: str, *extra: str) -> bytes:
    return zipped(("mimetype", mimetype.encode()), ("content.xml", b"<x/>"), *((name, b"x") for name in extra))


def uploads(*files: tuple[str, bytes], field: str = "anexos") -> list:
    return [(field, name, io.BytesIO(content)) for name, content in files]


# --- what the bytes are -----------------------------------------------------------


@pytest.mark.parametrize(
    "content, file_type",
    [
        (PNG_BYTES, PNG),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(32), JPEG),
        (b"GIF89a" + bytes(32), GIF),
        (b"GIF87a" + bytes(32), GIF),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32), WEBP),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", PDF),
        ("Erro às 10h: impressora offline\r\n\tcódigo 42\n".encode(), TEXT),
        ("relatório;valor\nçã;1\n".encode("cp1252"), TEXT),
        ("\ufeffLog do PowerShell\r\n".encode("utf-16"), TEXT),
        (b"\x1b[31mERRO\x1b[0m falha no disco\n", TEXT),
        (ooxml("word"), DOCX),
        (ooxml("xl"), XLSX),
        (ooxml("ppt"), PPTX),
        (opendocument("application/vnd.oasis.opendocument.text"), ODT),
        (opendocument("application/vnd.oasis.opendocument.spreadsheet"), ODS),
    ],
    ids=[
        "png",
        "jpeg",
        "gif89",
        "gif87",
        "webp",
        "pdf",
        "utf8-text",
        "cp1252-csv",
        "utf16-log",
        "ansi-log",
        "docx",
        "xlsx",
        "pptx",
        "odt",
        "ods",
    ],
)
def test_allowed_types_are_recognised_by_their_bytes(content, file_type):
    assert detect_type(content) == file_type


@pytest.mark.parametrize(
    "content",
    [
        PE_BYTES,
        b"\x7fELF\x02\x01\x01" + bytes(32),
        b"\xcf\xfa\xed\xfe" + bytes(32),
        b"\xca\xfe\xba\xbe" + bytes(32),
    ],
    ids=["windows-pe", "linux-elf", "macos-mach-o", "macos-universal"],
)
def test_executables_are_refused_as_such(content):
    with pytest.raises(Refused, match="executáveis"):
        detect_type(content)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "tipo de arquivo não aceito"),  # OLE2: .doc, .xls, .msi
        (b"binary\x00\x01\x02 data", "tipo de arquivo não aceito"),
        (zipped(("setup.exe", PE_BYTES)), "ZIP"),
        (b"PK\x03\x04 truncated zip", "ZIP"),
        (
            zipped(("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<x/>"), ("xl/workbook.xml", b"<x/>")),
            "ZIP",
        ),
        (ooxml("word", "word/vbaProject.bin"), "macros"),
        (opendocument("application/vnd.oasis.opendocument.text", "Basic/Standard/Module1.xml"), "macros"),
        (opendocument("application/x-something"), "ZIP"),
    ],
    ids=[
        "ole2",
        "binary",
        "plain-zip",
        "broken-zip",
        "two-ooxml-apps",
        "docx-with-macros",
        "odt-with-macros",
        "odf-unknown",
    ],
)
def test_other_content_is_refused_with_the_reason(content, reason):
    with pytest.raises(Refused, match=reason):
        detect_type(content)


def test_the_refusal_of_an_unknown_type_lists_what_is_accepted():
    with pytest.raises(Refused) as refused:
        detect_type(b"\x00\x01\x02")
    assert "PNG (.png)" in str(refused.value) and "texto (.txt, .log, .csv)" in str(refused.value)


# --- names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("print.png", "print.png"),
        ("C:\\fakepath\\print.png", "print.png"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ('relatório "final"\u200b.pdf', "relatório final.pdf"),
        ("  espaços.txt  ", "espaços.txt"),
        ("", "anexo-3"),
        (None, "anexo-3"),
        ("..", "anexo-3"),
        ("a" * 200 + ".docx", "a" * 145 + ".docx"),
        ("b" * 200, "b" * 150),
    ],
)
def test_file_names_lose_paths_quotes_and_invisible_characters_and_are_shortened(raw, clean):
    assert clean_filename(raw, 3) == clean


# --- reading a request's files ------------------------------------------------------


def test_files_are_read_with_their_type_and_bytes():
    content = b"linha 1\nlinha 2\n"
    attachments = read_attachments(uploads(("print.PNG", PNG_BYTES), ("erro.log", content)), 5, 1000)
    assert [(a.filename, a.file_type, a.content) for a in attachments] == [
        ("print.PNG", PNG, PNG_BYTES),
        ("erro.log", TEXT, content),
    ]


def test_a_name_without_extension_gets_the_one_of_its_content():
    assert [a.filename for a in read_attachments(uploads(("captura", PNG_BYTES)), 5, 1000)] == ["captura.png"]


def test_an_empty_file_input_is_skipped():
    assert read_attachments(uploads(("", b"")), 5, 1000) == []


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("tool.png", PE_BYTES, "tool.png: programas executáveis não são aceitos"),
        ("print.pdf", PNG_BYTES, "print.pdf: o conteúdo é PNG, mas a extensão é .pdf"),
        ("print.exe", PNG_BYTES, "print.exe: o conteúdo é PNG, mas a extensão é .exe"),
        ("vazio.txt", b"", "vazio.txt: arquivo vazio"),
        ("grande.png", PNG_BYTES + bytes(1000), "grande.png: maior que o limite de 1000 bytes por arquivo"),
    ],
)
def test_refused_files_are_named_with_the_reason(name, content, reason):
    with pytest.raises(ValidationError) as error:
        read_attachments(uploads((name, content)), 5, 1000)
    assert error.value.invalid == {"anexos": reason}


def test_every_refused_file_is_named_at_once():
    with pytest.raises(ValidationError) as error:
        read_attachments(uploads(("a.png", PE_BYTES), ("b.png", PNG_BYTES), ("c.pdf", PNG_BYTES)), 5, 1000)
    assert error.value.invalid["anexos"] == (
        "a.png: programas executáveis não são aceitos; c.pdf: o conteúdo é PNG, mas a extensão é .pdf"
    )


def test_more_files_than_allowed_are_refused_before_reading_their_types():
    with pytest.raises(ValidationError) as error:
        read_attachments(uploads(*[("a.png", PE_BYTES)] * 3), 2, 1000)
    assert error.value.invalid == {"anexos": "envie no máximo 2 arquivos (foram 3)"}


def test_a_file_in_another_field_is_refused_naming_the_field():
    with pytest.raises(ValidationError) as error:
        read_attachments(uploads(("a.png", PNG_BYTES), field="anexo"), 5, 1000)
    assert error.value.invalid == {"anexo": "arquivos só são aceitos no campo anexos"}


@pytest.mark.parametrize("limit, shown", [(5 * 1024 * 1024, "5 MB"), (1536 * 1024, "1,5 MB"), (512 * 1024, "512 KB")])
def test_the_size_limit_is_shown_in_readable_units(limit, shown):
    with pytest.raises(ValidationError) as error:
        read_attachments(uploads(("a.txt", b"x" * (limit + 1))), 5, limit)
    assert f"maior que o limite de {shown} por arquivo" in error.value.invalid["anexos"]


# --- judged from the first bytes, kept as streams -----------------------------------


class CountingStream(io.BytesIO):
    """A seekable upload that counts the bytes read from it."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def test_binary_files_are_judged_by_their_first_bytes_and_kept_as_streams():
    stream = CountingStream(PNG_BYTES + bytes(5 * 1024 * 1024))
    [attachment] = take_attachments([("anexos", "print.png", stream)], 5, 6 * 1024 * 1024)
    assert attachment.content is stream and stream.tell() == 0  # sent from its start, never copied
    assert stream.bytes_read <= HEAD_BYTES


def test_a_text_file_is_judged_whole_but_in_chunks():
    content = b"linha de log\n" * 100_000 + b"\x00"
    with pytest.raises(ValidationError):
        take_attachments([("anexos", "erro.log", CountingStream(content))], 5, len(content))


def test_office_files_are_recognised_from_a_stream(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    [attachment] = take_attachments([("anexos", "a.docx", io.BytesIO(buffer.getvalue()))], 5, 10_000)
    assert attachment.file_type == DOCX


def test_the_public_form_types_leave_out_office_documents():
    assert DOCX not in FORM_TYPES and {PNG, PDF} <= set(FORM_TYPES)
    with pytest.raises(Refused, match="são aceitos PNG"):
        detect_type(b"PK\x03\x04" + bytes(100), FORM_TYPES)


@pytest.mark.parametrize("char", ["\u202e", "\u202a", "\u2066", "\u2069", "\u061c", "\u180e"])
def test_bidi_overrides_are_removed_from_file_names(char):
    assert clean_filename(f"report{char}gnp.pdf", 1) == "reportgnp.pdf"
