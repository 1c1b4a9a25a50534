#!/bin/sh
# `make run`: serve the gateway on 127.0.0.1:5000 under gunicorn, against the GLPI
# configured in the environment or .env, or else against the built-in GLPI sandbox.
set -eu
export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-5000}"
PY=.venv/bin/python

if [ -z "${GLPI_URL:-}" ] && ! grep -qsE '^[[:space:]]*GLPI_URL=[^[:space:]]' .env; then
  SANDBOX_PORT="${SANDBOX_PORT:-8089}"
  $PY -m glpi_sandbox --host 127.0.0.1 --port "$SANDBOX_PORT" >/dev/null &
  SANDBOX_PID=$!
  trap 'kill $SANDBOX_PID 2>/dev/null' EXIT INT TERM
  $PY -c "import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(('127.0.0.1', $SANDBOX_PORT), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit('a sandbox do GLPI não subiu na porta $SANDBOX_PORT')"
  export GLPI_URL="http://127.0.0.1:$SANDBOX_PORT/apirest.php"
  export GLPI_APP_TOKEN=sandbox-app-token GLPI_USER_TOKEN=sandbox-user-token
  export GLPI_DEFAULT_CATEGORY_ID=1 GLPI_REQUEST_TYPE_ID=7 GLPI_REQUESTER_USER_ID=8
  cat <<BANNER
================================================================================
 MODO SANDBOX: nenhum GLPI configurado (GLPI_URL vazio), usando o GLPI simulado
 em $GLPI_URL. Os chamados criados ficam só na memória.
 Para usar o seu GLPI, copie .env.example para .env e preencha.
 Formulário de contato: http://$HOST:$PORT/formulario   API: http://$HOST:$PORT/docs
 Acompanhar um chamado (o link da mensagem de sucesso do formulário): http://$HOST:$PORT/acompanhar
 Experimente (CNPJ da entidade de demonstração "Cliente Alfa"):
   curl -s -X POST http://$HOST:$PORT/criar-chamado -H 'Content-Type: application/json' \\
     -d '{"nome_cliente":"Maria","telefone_cliente":"11 99999-0000","cnpj_cliente":"11.222.333/0001-81","anydesk_cliente":"123 456 789","descricao_problema":"Impressora não imprime"}'
================================================================================
BANNER
fi
.venv/bin/gunicorn "app:create_app()"
