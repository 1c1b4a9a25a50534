"""`python app.py doctor [--cnpj X]`: checks the configuration and the GLPI behind it, in order, and
says in Portuguese how to fix each failure. Exit status 0 when nothing failed, 1 otherwise.

Every GLPI call goes through `GlpiClient`; the CNPJ field and the configured ids are judged by the
same functions the gateway uses at start-up, so the doctor and the gateway never disagree.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import requests

from config import Config, ConfigError, load_config
from glpi_client import GlpiClient, GlpiError, GlpiUnavailable
from glpi_gateway.cnpj import format_cnpj, is_valid_cnpj, normalize_cnpj
from glpi_gateway.tickets import (
    CONFIGURED_ITEMS,
    AmbiguousEntity,
    EntityNotFound,
    GatewaySetupError,
    TicketGateway,
    fields_plugin_options,
    pick_cnpj_option,
)

PASSED, FAILED, WARNED, SKIPPED = "ok", "falha", "aviso", "pulado"
MARKS = {PASSED: "✓", FAILED: "✗", WARNED: "!", SKIPPED: "–"}

CONFIG = "Configuração"
URL = "GLPI_URL responde e é a API REST (apirest.php)"
API = "API REST ativada no GLPI"
APP_TOKEN = "Cliente de API e App-Token aceitos"
USER_TOKEN = "Token do usuário aceito"
LOGIN_STEPS = (URL, API, APP_TOKEN, USER_TOKEN)
ENTITIES = "Entidades visíveis para o usuário da API"
CNPJ_FIELD = "Campo CNPJ (plugin Fields) em Entidade"
LOOKUP = "Busca de exemplo por CNPJ"
ITEM_TITLES = {
    "ITILCategory": "Categoria padrão (GLPI_DEFAULT_CATEGORY_ID)",
    "User": "Usuário requerente (GLPI_REQUESTER_USER_ID)",
    "RequestType": "Tipo de requisição (GLPI_REQUEST_TYPE_ID)",
}
ITEM_FIXES = {
    "ITILCategory": "Use o id de uma categoria existente (Configurar > Listas suspensas > Categorias ITIL, "
    "coluna ID) ou deixe a variável vazia.",
    "User": "Use o id de um usuário existente (Administração > Usuários, coluna ID) ou deixe a variável vazia.",
    "RequestType": "Use o id de uma origem existente (Configurar > Listas suspensas > Origens das requisições, "
    "coluna ID) ou deixe a variável vazia.",
}
TLS = "Certificado TLS"
GLPI_STEPS = (*LOGIN_STEPS, ENTITIES, CNPJ_FIELD, LOOKUP, *(ITEM_TITLES[item[0]] for item in CONFIGURED_ITEMS))

API_CLIENTS = "Configurar > Geral > API > Clientes da API"
AUTHORIZATION_FIX = """\
Configure o servidor web do GLPI para repassar o cabeçalho Authorization ao PHP e recarregue-o.
Apache (no VirtualHost do GLPI ou no .htaccess):
    SetEnvIf Authorization "(.*)" HTTP_AUTHORIZATION=$1
  ou, com CGI/FastCGI (Apache 2.4.13+):
    CGIPassAuth On
nginx (no bloco location que passa o PHP ao PHP-FPM):
    fastcgi_param HTTP_AUTHORIZATION $http_authorization;"""
_IP_IN_MESSAGE = re.compile(r"\(([^()]+)\)\s*$")


@dataclass(frozen=True)
class Check:
    title: str
    outcome: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Report:
    checks: list[Check]
    secrets: list[str]

    @property
    def ok(self) -> bool:
        return all(check.outcome != FAILED for check in self.checks)

    def render(self) -> str:
        lines = ["Diagnóstico do gateway GLPI", ""]
        for check in self.checks:
            first, *more = check.detail.splitlines()
            lines.append(f"{MARKS[check.outcome]} {check.title}: {first}")
            lines += [f"    {line}" for line in more]
            if check.fix:
                fix_lines = check.fix.splitlines()
                lines.append(f"    Como corrigir: {fix_lines[0]}")
                lines += [f"      {line}" for line in fix_lines[1:]]
        failures = sum(check.outcome == FAILED for check in self.checks)
        lines.append("")
        if failures:
            failed = "1 verificação falhou" if failures == 1 else f"{failures} verificações falharam"
            lines.append(f"{failed}: corrija de cima para baixo e rode de novo.")
        else:
            lines.append("Tudo certo: o gateway está pronto para criar chamados.")
        text = "\n".join(lines)
        for secret in self.secrets:  # nothing above should hold one; this makes sure
            text = text.replace(secret, "***")
        return text


def diagnose(cnpj: str | None = None, load: Callable[[], Config] = load_config) -> Report:
    try:
        config = load()
    except ConfigError as error:
        fix = "Corrija a variável no ambiente ou no arquivo .env (modelo em .env.example)."
        checks = [Check(CONFIG, FAILED, str(error), fix)]
        checks += [_skipped(title, CONFIG) for title in (*GLPI_STEPS, TLS)]
        return Report(checks, [])
    client = GlpiClient.from_config(config)
    checks = [Check(CONFIG, PASSED, "válida")]
    try:
        checks += _glpi_checks(config, client, cnpj)
    finally:
        client.close()
    checks.append(_tls_check(config))
    return Report(checks, config.secrets())


def _skipped(title: str, because: str) -> Check:
    return Check(title, SKIPPED, f"não verificado (depende de «{because}»)")


def _glpi_checks(config: Config, client: GlpiClient, cnpj: str | None) -> list[Check]:
    checks = _login_checks(config, client)
    if checks[-1].outcome != PASSED:
        return checks + [_skipped(title, USER_TOKEN) for title in GLPI_STEPS[len(LOGIN_STEPS) :]]
    gateway = TicketGateway(config, client)
    checks.append(_entities_check(client))
    field_check, option_id = _cnpj_field_check(config, client)
    checks.append(field_check)
    checks.append(_lookup_check(gateway, option_id, cnpj))
    for itemtype, setting, variable in CONFIGURED_ITEMS:
        checks.append(_configured_item_check(gateway, itemtype, getattr(config, setting), variable))
    return checks


def _login_checks(config: Config, client: GlpiClient) -> list[Check]:
    """URL, API, API client and user token: one initSession answers all four, in GLPI's own order."""
    app_token = "aceito" if config.glpi_app_token else "GLPI_APP_TOKEN vazio, e o cliente de API não pede token"
    passed = {URL: config.glpi_url, API: "ativa", APP_TOKEN: app_token, USER_TOKEN: "sessão aberta"}
    try:
        client.check_login()
    except GlpiUnavailable as error:
        failed = Check(URL, FAILED, *_unreachable(config, error))
    except GlpiError as error:
        failed = _refused_login(config, error)
    else:
        return [Check(title, PASSED, passed[title]) for title in LOGIN_STEPS]
    position = LOGIN_STEPS.index(failed.title)
    return (
        [Check(title, PASSED, passed[title]) for title in LOGIN_STEPS[:position]]
        + [failed]
        + [_skipped(title, failed.title) for title in LOGIN_STEPS[position + 1 :]]
    )


def _unreachable(config: Config, error: GlpiUnavailable) -> tuple[str, str]:
    host = urlparse(config.glpi_url).netloc
    if error.code == "CONNECTION_FAILED":
        return (
            f"não foi possível conectar a {host}",
            "Confira o endereço em GLPI_URL, o DNS, o firewall e se o servidor do GLPI está no ar.",
        )
    if error.code == "TIMEOUT":
        return (
            f"o GLPI não respondeu em {config.glpi_timeout:g} s",
            "Confira firewall e proxy entre o gateway e o GLPI; se o GLPI for só lento, aumente GLPI_TIMEOUT.",
        )
    if error.code == "TLS_ERROR":
        return ("o certificado TLS do GLPI não foi aceito", f"Veja a verificação «{TLS}» abaixo.")
    if error.code == "REDIRECTED":
        target = error.message.rsplit(" to ", 1)[-1]
        suggestion = target.removesuffix("/initSession")
        return (
            f"o servidor redirecionou a chamada (HTTP {error.status}) para {target}",
            f"Use em GLPI_URL o endereço final, sem redirecionamento: {suggestion}",
        )
    if error.code == "NOT_JSON":
        fix = (
            "GLPI_URL deve ser a URL da API, terminando em apirest.php, "
            "por exemplo https://glpi.exemplo.com.br/apirest.php."
        )
        if not config.glpi_url.endswith(("/apirest.php", "/api.php/v1")):  # GLPI 11 serves it at both
            fix += " A URL configurada não termina em /apirest.php."
        else:
            fix += (
                " Se ela já termina assim, um proxy ou login único (SSO) na frente do GLPI está respondendo"
                " no lugar dele: libere o caminho /apirest.php para o gateway."
            )
        return (
            f"a resposta (HTTP {error.status}) não é a API REST do GLPI: parece a interface web ou uma página de login",
            fix,
        )
    if error.code == "SERVER_ERROR":
        return (
            f"o GLPI respondeu com erro interno (HTTP {error.status})",
            "Veja o log de erros do servidor web e do PHP do GLPI.",
        )
    return (f"resposta inesperada do GLPI ({error.message})", "Confira se GLPI_URL aponta para o apirest.php do GLPI.")


def _refused_login(config: Config, error: GlpiError) -> Check:
    glpi_said = f"o GLPI respondeu {error.code}: {error.message}"
    if error.code == "ERROR" and "API disabled" in error.message:
        return Check(
            API,
            FAILED,
            'o GLPI respondeu ["ERROR", "API disabled"]',
            "No GLPI, em Configurar > Geral > API, ligue «Ativar a API REST» e salve.",
        )
    if error.code == "ERROR_NOT_ALLOWED_IP":
        match = _IP_IN_MESSAGE.search(error.message)
        address = match.group(1) if match else "?"
        return Check(
            APP_TOKEN,
            FAILED,
            f"nenhum cliente de API ativo aceita o endereço {address} ({error.code})",
            f"Em {API_CLIENTS}, inclua {address} na faixa de IP (IPv4 ou IPv6) de um cliente ativo. "
            "É o endereço que o GLPI vê: atrás de proxy ou NAT, é o do proxy, não o do gateway.",
        )
    if error.code == "ERROR_WRONG_APP_TOKEN_PARAMETER":
        return Check(
            APP_TOKEN,
            FAILED,
            glpi_said,
            f"Copie para GLPI_APP_TOKEN o App-Token do cliente de API que aceita o endereço do gateway "
            f"({API_CLIENTS}). Se esse cliente não tem App-Token, deixe GLPI_APP_TOKEN vazio.",
        )
    if error.code == "ERROR_APP_TOKEN_PARAMETERS_MISSING":
        return Check(
            APP_TOKEN,
            FAILED,
            "o cliente de API exige um App-Token e GLPI_APP_TOKEN está vazio",
            f"Defina GLPI_APP_TOKEN com o App-Token do cliente de API ({API_CLIENTS}).",
        )
    if error.code == "ERROR_LOGIN_PARAMETERS_MISSING":
        return Check(
            USER_TOKEN,
            FAILED,
            "o GLPI não recebeu o token (ERROR_LOGIN_PARAMETERS_MISSING), embora GLPI_USER_TOKEN esteja "
            "definido:\no servidor web do GLPI descarta o cabeçalho Authorization antes de chegar ao PHP.",
            AUTHORIZATION_FIX,
        )
    if error.code == "ERROR_GLPI_LOGIN_USER_TOKEN":
        return Check(
            USER_TOKEN,
            FAILED,
            f"o GLPI recusou GLPI_USER_TOKEN ({error.code})",
            "Gere de novo o «Token de API» do usuário do gateway (Preferências > Chaves de acesso remoto) "
            "e copie para GLPI_USER_TOKEN. Confira também, em Configurar > Geral > API, «Ativar login com "
            "token externo», e se o usuário está ativo e tem um perfil.",
        )
    return Check(USER_TOKEN, FAILED, glpi_said, "Corrija o que a mensagem do GLPI aponta e rode de novo.")


def _entities_check(client: GlpiClient) -> Check:
    fix = (
        "Dê ao usuário do gateway um perfil que leia entidades e crie chamados, na entidade raiz e marcado "
        "como recursivo (Administração > Usuários > Habilitações)."
    )
    try:
        count = client.count("Entity")
    except GlpiError as error:
        return Check(ENTITIES, FAILED, f"o GLPI recusou a busca de entidades: {error.code} {error.message}", fix)
    if count == 0:
        return Check(ENTITIES, FAILED, "o usuário da API não vê nenhuma entidade", fix)
    return Check(ENTITIES, PASSED, f"{count} entidade(s)")


def _cnpj_field_check(config: Config, client: GlpiClient) -> tuple[Check, int | None]:
    try:
        options = fields_plugin_options(client.list_search_options("Entity"))
    except GlpiError as error:
        return Check(
            CNPJ_FIELD,
            FAILED,
            f"o GLPI recusou listSearchOptions/Entity: {error.code} {error.message}",
            "Confira os direitos do perfil do usuário do gateway.",
        ), None
    try:
        chosen = pick_cnpj_option(options, config)
    except GatewaySetupError as error:
        chosen, problem = None, str(error)
    listing = [
        f"{option_id} = {name!r}" + ("  ← usado" if option_id == chosen else "")
        for option_id, name in sorted(options.items())
    ]
    if chosen is not None:
        how = "GLPI_CNPJ_FIELD_ID" if config.glpi_cnpj_field_id else f"rótulo {config.glpi_cnpj_field_label!r}"
        return Check(CNPJ_FIELD, PASSED, "\n".join([f"opção {chosen} (por {how})", *listing])), chosen
    if not options:
        return Check(
            CNPJ_FIELD,
            FAILED,
            "nenhuma opção do plugin Fields em Entidade",
            "No plugin Fields, crie um bloco para Entidade com um campo texto «CNPJ», ative-o e dê ao "
            "perfil do usuário do gateway direito de leitura no bloco (Administração > Perfis, aba do "
            "plugin Fields): sem esse direito a opção não aparece para a API.",
        ), None
    return Check(
        CNPJ_FIELD,
        FAILED,
        "\n".join([problem, "Opções do plugin Fields em Entidade:", *listing]),
        "Defina GLPI_CNPJ_FIELD_ID com o id certo da lista acima, ou ajuste GLPI_CNPJ_FIELD_LABEL ao rótulo do campo.",
    ), None


def _lookup_check(gateway: TicketGateway, option_id: int | None, cnpj: str | None) -> Check:
    if cnpj is None:
        return Check(LOOKUP, SKIPPED, "informe --cnpj <CNPJ de um cliente> para testar a busca")
    if option_id is None:
        return _skipped(LOOKUP, CNPJ_FIELD)
    if not is_valid_cnpj(cnpj):
        return Check(
            LOOKUP,
            FAILED,
            f"{cnpj!r} não é um CNPJ válido (verifique os dígitos)",
            "Passe em --cnpj o CNPJ de um cliente cadastrado.",
        )
    normalized = normalize_cnpj(cnpj)
    try:
        entity = gateway.fetch_entity_uncached(normalized, option_id)
    except EntityNotFound:
        return Check(
            LOOKUP,
            FAILED,
            f"nenhuma entidade visível tem o CNPJ {format_cnpj(normalized)}",
            f"Confira o CNPJ gravado no campo da opção {option_id} da entidade do cliente (formatado ou só "
            "dígitos, tanto faz) e se o usuário da API vê essa entidade.",
        )
    except AmbiguousEntity as error:
        return Check(
            LOOKUP,
            FAILED,
            f"{len(error.names)} entidades têm o CNPJ {format_cnpj(normalized)}: {', '.join(error.names)}",
            "Deixe o CNPJ em uma só entidade: o gateway recusa (409) pedidos com CNPJ ambíguo.",
        )
    except GlpiError as error:
        return Check(
            LOOKUP,
            FAILED,
            f"o GLPI recusou a busca: {error.code} {error.message}",
            "Confira os direitos do perfil do usuário do gateway.",
        )
    return Check(LOOKUP, PASSED, f"{format_cnpj(normalized)} → entidade {entity.name!r} (id {entity.id})")


def _configured_item_check(gateway: TicketGateway, itemtype: str, item_id: int | None, variable: str) -> Check:
    title = ITEM_TITLES[itemtype]
    if item_id is None:
        return Check(title, PASSED, "não definido (opcional)")
    try:
        gateway.check_configured_item(itemtype, item_id, variable)
    except GatewaySetupError as error:
        return Check(title, FAILED, str(error), ITEM_FIXES[itemtype])
    except GlpiError as error:
        return Check(
            title,
            FAILED,
            f"o GLPI recusou GET {itemtype}/{item_id}: {error.code} {error.message}",
            "Confira os direitos do perfil do usuário do gateway.",
        )
    return Check(title, PASSED, f"{itemtype} {item_id} existe")


def _tls_check(config: Config) -> Check:
    url = urlparse(config.glpi_url)
    if url.scheme != "https":
        return Check(TLS, SKIPPED, "não se aplica: GLPI_URL usa http (os tokens trafegam sem criptografia)")
    host, port = url.hostname or "", url.port or 443
    bundle = _ca_bundle()
    context = (
        ssl.create_default_context(capath=bundle)
        if os.path.isdir(bundle)
        else ssl.create_default_context(cafile=bundle)
    )
    try:
        with socket.create_connection((host, port), timeout=config.glpi_timeout) as connection:
            with context.wrap_socket(connection, server_hostname=host) as tls:
                certificate = tls.getpeercert()
    except ssl.SSLCertVerificationError as error:
        problem = f"o certificado de {host} não foi aceito: {error.verify_message}"
        if not config.glpi_verify_tls:
            return Check(
                TLS,
                WARNED,
                f"{problem}\nGLPI_VERIFY_TLS=false: o gateway aceita assim mesmo.",
                "Em rede não confiável, instale um certificado válido e volte GLPI_VERIFY_TLS para true.",
            )
        return Check(
            TLS,
            FAILED,
            problem,
            f"Instale no GLPI um certificado válido para {host}, com a cadeia completa (intermediários). "
            "Se a CA é interna, aponte a variável REQUESTS_CA_BUNDLE para o arquivo da CA. Só em rede "
            "confiável: GLPI_VERIFY_TLS=false.",
        )
    except (OSError, ValueError) as error:
        return Check(
            TLS,
            FAILED,
            f"não foi possível abrir uma conexão TLS com {host}:{port} ({error})",
            "Confira se o GLPI atende https nesse endereço e porta.",
        )
    # The context verifies the peer (CERT_REQUIRED): a handshake that succeeded always leaves its
    # certificate, whose notAfter is a text such as "Jun  1 12:00:00 2030 GMT".
    not_after = certificate["notAfter"] if certificate else None
    assert isinstance(not_after, str)
    expires = datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), datetime.UTC)
    days = (expires - datetime.datetime.now(datetime.UTC)).days
    detail = f"válido para {host}, expira em {expires:%d/%m/%Y} ({days} dias)"
    if days < 15:
        return Check(TLS, WARNED, detail, "Renove o certificado do GLPI antes que expire.")
    return Check(TLS, PASSED, detail)


def _ca_bundle() -> str:
    """The CA file (or directory) requests verifies GLPI against: it honours these variables, and so do we."""
    return (
        os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or requests.utils.DEFAULT_CA_BUNDLE_PATH
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python app.py doctor", description="Confere a configuração do gateway e o GLPI, passo a passo."
    )
    parser.add_argument("--cnpj", help="CNPJ de um cliente, para testar a busca da entidade")
    args = parser.parse_args(argv)
    report = diagnose(cnpj=args.cnpj)
    print(report.render(), flush=True)
    return 0 if report.ok else 1
