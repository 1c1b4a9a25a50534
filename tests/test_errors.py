"""errors.py: one table says which answer each failure gets, for the HTTP face and the queue alike."""

from __future__ import annotations

import logging

import pytest

from glpi_client import GlpiAuthError, GlpiError, GlpiUnavailable
from glpi_gateway.delivery import refusal_reason
from glpi_gateway.errors import ERROR_ANSWERS, EXCEPTION_ANSWERS, answer_for
from glpi_gateway.store import StoreUnavailable
from glpi_gateway.tickets import AmbiguousEntity, EntityNotFound, TicketRefused, UnknownCategory


def test_every_failure_in_the_table_answers_with_a_catalogue_entry():
    samples = [
        EntityNotFound("x"),
        AmbiguousEntity("x", ["A", "B"]),
        UnknownCategory(99),
        TicketRefused("sem permissão", 403),
        StoreUnavailable("disco cheio"),
        GlpiAuthError("x", "ERROR_GLPI_LOGIN_USER_TOKEN"),
        GlpiUnavailable("x", "TIMEOUT"),
        GlpiError("x", "ERROR_RIGHT_MISSING"),
    ]
    for error in samples:
        refusal = answer_for(error, "req-1")
        assert refusal is not None and refusal.answer in ERROR_ANSWERS, error
    assert {type(error) for error in samples} <= set(EXCEPTION_ANSWERS)


@pytest.mark.parametrize(
    "error, codigo",
    [
        (GlpiUnavailable("x", "TIMEOUT"), "glpi_indisponivel"),
        (GlpiAuthError("x", "ERROR_GLPI_LOGIN_USER_TOKEN"), "falha_sessao_glpi"),
        (GlpiError("x", "ERROR_RIGHT_MISSING"), "erro_glpi"),
    ],
)
def test_a_subclass_gets_its_own_answer_before_its_ancestors(error, codigo):
    refusal = answer_for(error)
    assert refusal is not None and refusal.answer.codigo == codigo


def test_an_unexpected_failure_has_no_table_answer():
    assert answer_for(RuntimeError("boom")) is None


def test_a_queued_ticket_fails_for_the_reason_the_http_answer_gives():
    http = answer_for(UnknownCategory(99))
    assert http is not None
    assert refusal_reason(UnknownCategory(99)) == {
        "codigo": "categoria_desconhecida",
        "motivo": http.members["campos"]["categoria"],
    }
    assert refusal_reason(TicketRefused("sem permissão", 403)) == {
        "codigo": "chamado_recusado",
        "motivo": "o GLPI recusou o chamado: sem permissão",
    }


def test_failures_of_glpi_and_the_store_are_logged_with_their_event():
    refusal = answer_for(StoreUnavailable("disco cheio"))
    assert refusal is not None
    assert (refusal.log_level, refusal.event) == (logging.ERROR, "armazenamento_indisponivel")
    assert "disco cheio" in refusal.log_message


def test_glpis_own_status_is_kept_for_a_refused_ticket():
    refusal = answer_for(TicketRefused("sem permissão", 403))
    assert refusal is not None and refusal.status_code == 403
