/* Follow-up page of the GLPI ticket gateway: a ticket's state by its protocol, and a message to add.
 *
 * Builds the page inside the element chosen by the script tag's data-alvo attribute (default
 * #acompanhar-chamado). The protocol comes from the page address (?protocolo=, the form's success
 * link) and is looked up at once, or is typed. GET chamados/<protocolo> gives the state, shown as
 * a timeline (with the messages still waiting in the gateway's queue); "Adicionar informação" posts
 * to chamados/<protocolo>/complemento (multipart when files are attached) with one Idempotency-Key
 * per message, reused when it is sent again; a 202 means the message waits in the queue. With API keys on, the gateway writes
 * the form's public key below: a lookup carries the key alone (the protocol is the credential), a
 * message also a challenge solved while the person types (docs/acompanhar.md).
 */
(function () {
  "use strict";

/* COMUM */

  var formKey = /* FORM_API_KEY */ null;
  // {maxCount, maxBytes, extensions}: the server's limits for files (form.attachment_limits).
  var attachmentLimits = /* ATTACHMENT_LIMITS */ null;
  var formPage = gatewayUrl("formulario");
  var PROTOCOL = /^[0-9a-f]{32}$/;
  var CLOSED = 6;  // GLPI's status "Fechado": the gateway takes no more messages (409 chamado_fechado)
  var instances = 0;

  var NOT_FOUND = "Protocolo não encontrado. Confira se o código está completo; protocolos antigos deixam de valer " +
    "depois de um tempo.";
  var MISCONFIGURED = "O serviço de chamados está com a configuração incorreta. Avise o suporte por telefone.";
  var UNAVAILABLE = "O sistema de chamados está fora do ar. Tente de novo em alguns minutos.";
  var DEFAULT_ADVICE = "Tente de novo em alguns minutos. Se o problema continuar, fale com o suporte por telefone.";
  var QUEUED_MESSAGE = "Mensagem recebida, na fila: o sistema de chamados está fora do ar agora (ou o chamado ainda " +
    "não foi aberto), e a sua mensagem será entregue assim que ele voltar.";
  var STATES = {
    enfileirado: "Na fila, aguardando o sistema de chamados",
    falhou: "Não foi possível abrir o chamado",
    cancelado: "Cancelado"
  };

  // --- dates ----------------------------------------------------------------------------

  function pad(number) {
    return (number < 10 ? "0" : "") + number;
  }

  /* GLPI's dates carry no zone (GLPI's clock, taken as the reader's); the gateway's end in Z (UTC).
     Both read as the reader's local time. */
  function parseDate(value) {
    var date = value ? new Date(value) : null;
    return date && !isNaN(date.getTime()) ? date : null;
  }

  function timeText(date) {
    return pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function dateText(date) {
    return pad(date.getDate()) + "/" + pad(date.getMonth() + 1) + "/" + date.getFullYear() + " às " + timeText(date);
  }

  /* Seconds to wait (Retry-After) as people say it. */
  function waitText(seconds) {
    if (!seconds) { return "alguns minutos"; }
    if (seconds < 60) { return seconds + (seconds === 1 ? " segundo" : " segundos"); }
    var minutes = Math.ceil(seconds / 60);
    return minutes + (minutes === 1 ? " minuto" : " minutos");
  }

  // --- the state as a timeline ----------------------------------------------------------

  /* The answer of GET chamados/<protocolo> as events {date, raw, title, text}: dated ones oldest
     first, then those without a date (what is happening now). */
  function events(state) {
    var list = [];
    function add(raw, title, text) {
      list.push({date: parseDate(raw), raw: raw, title: title, text: text || "", order: list.length});
    }
    var ticket = state.chamado;
    if (state.recebido_em) { add(state.recebido_em, "Pedido recebido"); }
    if (ticket) {
      add(ticket.aberto_em, "Chamado nº " + ticket.numero + " aberto");
      (ticket.conversa || []).forEach(function (item) {
        add(item.data, item.tipo === "solucao" ? "Solução (" + item.autor + ")" : item.autor, item.texto);
      });
      if (ticket.solucionado_em) { add(ticket.solucionado_em, "Chamado solucionado"); }
      if (ticket.fechado_em) { add(ticket.fechado_em, "Chamado fechado"); }
    } else if (state.status === "criado") {
      add(null, "Chamado nº " + state.ticket_id + " aberto");
    } else if (state.status === "enfileirado") {
      var retries = state.tentativas ? " Tentativas de entrega até agora: " + state.tentativas +
        (parseDate(state.proxima_tentativa_em) ? "; a próxima em " + dateText(parseDate(state.proxima_tentativa_em)) : "") +
        "." : "";
      add(null, "Na fila", "O sistema de chamados está indisponível agora; o chamado será aberto assim que ele voltar." +
        retries);
    } else if (state.status === "falhou") {
      add(null, "Não foi possível abrir o chamado", sentence(state.motivo || "o sistema de chamados recusou o pedido") +
        " Fale com o suporte por telefone.");
    } else if (state.status === "cancelado") {
      add(state.cancelado_em, "Pedido cancelado", state.motivo ? sentence(state.motivo) : "");
    }
    (state.complementos || []).forEach(function (waiting) {
      var files = waiting.anexos && waiting.anexos.length ? " Anexos: " + namesText(waiting.anexos) + "." : "";
      if (waiting.status === "enfileirado" && waiting.mensagem_entregue) {
        add(waiting.recebido_em, "Anexos da sua mensagem (na fila)", files.trim() +
          "\nSerão enviados assim que o sistema voltar.");
      } else if (waiting.status === "enfileirado") {
        add(waiting.recebido_em, "Sua mensagem (na fila)", waiting.texto + "\n" + files.trim() +
          (files ? "\n" : "") + "Sua mensagem será entregue assim que o sistema voltar.");
      } else {
        var why = waiting.codigo === "chamado_fechado" ? "O chamado foi fechado antes da entrega." :
          sentence(waiting.motivo || "não foi possível entregar");
        add(waiting.recebido_em, "Sua mensagem não foi entregue", waiting.texto + "\n" + why);
      }
    });
    return list.sort(function (a, b) {
      if (a.date && b.date) { return a.date - b.date || a.order - b.order; }
      return a.date ? -1 : b.date ? 1 : a.order - b.order;
    });
  }

  function statusText(state) {
    if (state.chamado) { return state.chamado.status; }
    return state.status === "criado" ? "Chamado aberto" : STATES[state.status] || state.status;
  }

  function titleText(state) {
    var number = state.chamado ? state.chamado.numero : state.ticket_id;
    return number !== undefined && number !== null ? "Chamado nº " + number : "Pedido de chamado";
  }

  // --- markup -----------------------------------------------------------------------------

  function fieldMarkup(id, label, hint, control) {
    return '<div class="gf-campo">' +
      '<label for="' + id + '">' + escapeHtml(label) + "</label>" +
      (hint ? '<p class="gf-dica" id="' + id + '-dica">' + escapeHtml(hint) + "</p>" : "") +
      control.replace("DESCRIBED", (hint ? id + "-dica " : "") + id + "-erro") +
      '<p class="gf-erro" id="' + id + '-erro"></p>' +
      "</div>";
  }

  function pageMarkup(prefix) {
    return '<div class="gf gf-acompanhar">' +
      '<form class="gf-consulta" method="get" novalidate>' +
      fieldMarkup(prefix + "-protocolo", "Protocolo do chamado",
        "O código de 32 letras e números que você recebeu ao abrir o chamado.",
        '<input id="' + prefix + '-protocolo" name="protocolo" type="text" autocomplete="off" autocapitalize="none" ' +
        'spellcheck="false" maxlength="64" required aria-describedby="DESCRIBED">') +
      '<button type="submit" class="gf-enviar">Consultar</button>' +
      "</form>" +
      '<div class="gf-resultado" role="status" aria-live="polite"></div>' +
      '<section class="gf-chamado" aria-labelledby="' + prefix + '-titulo" hidden>' +
      '<h2 id="' + prefix + '-titulo" tabindex="-1"></h2>' +
      '<p class="gf-situacao">Situação: <strong></strong></p>' +
      '<p class="gf-aviso" hidden></p>' +
      '<h3 id="' + prefix + '-andamento">Andamento</h3>' +
      '<ol class="gf-linha-do-tempo" aria-labelledby="' + prefix + '-andamento"></ol>' +
      '<button type="button" class="gf-atualizar">Atualizar</button>' +
      '<p class="gf-sem-complemento" hidden></p>' +
      '<form class="gf-complemento" method="post" novalidate hidden>' +
      fieldMarkup(prefix + "-mensagem", "Adicionar informação",
        "O que mudou, o que você já tentou, um horário melhor para o técnico: a mensagem entra no chamado.",
        '<textarea id="' + prefix + '-mensagem" name="mensagem" rows="5" maxlength="5000" required ' +
        'aria-describedby="DESCRIBED"></textarea>') +
      fieldMarkup(prefix + "-nome", "Seu nome (opcional)", "",
        '<input id="' + prefix + '-nome" name="nome" type="text" autocomplete="name" maxlength="100" ' +
        'aria-describedby="DESCRIBED">') +
      attachmentsMarkup(prefix, attachmentLimits) +
      '<button type="submit" class="gf-enviar">Enviar informação</button>' + progressMarkup(prefix, attachmentLimits) +
      '<div class="gf-resultado" role="status" aria-live="polite"></div>' +
      "</form>" +
      "</section>" +
      "</div>";
  }

  // --- one page ---------------------------------------------------------------------------

  function mount(container) {
    instances += 1;
    var prefix = "ga" + instances;
    container.innerHTML = pageMarkup(prefix);
    var lookupForm = container.querySelector(".gf-consulta");
    var protocolField = lookupForm.querySelector("input");
    var lookupButton = lookupForm.querySelector(".gf-enviar");
    var result = container.querySelector(".gf-acompanhar > .gf-resultado");
    var section = container.querySelector(".gf-chamado");
    var heading = section.querySelector("h2");
    var situation = section.querySelector(".gf-situacao strong");
    var notice = section.querySelector(".gf-aviso");
    var timeline = section.querySelector(".gf-linha-do-tempo");
    var refreshButton = section.querySelector(".gf-atualizar");
    var noComplement = section.querySelector(".gf-sem-complemento");
    var complementForm = section.querySelector(".gf-complemento");
    var messageField = complementForm.querySelector("textarea");
    var nameField = complementForm.querySelector("input");
    var sendButton = complementForm.querySelector(".gf-enviar");
    var complementResult = complementForm.querySelector(".gf-resultado");
    var attachments = mountAttachments(complementForm, prefix, attachmentLimits, "Anexos enviados. Aguarde…");
    var shown = null;  // the protocol whose state the section shows
    var looking = false;
    var sending = false;
    var keys = submissionKeys();
    var credentials = postCredentials(formKey);

    function setFieldError(field, message) {
      container.querySelector("#" + field.id + "-erro").textContent = message;
      if (message) {
        field.setAttribute("aria-invalid", "true");
      } else {
        field.removeAttribute("aria-invalid");
      }
    }

    function busy(button, text) {
      button.setAttribute("aria-disabled", "true");
      button.setAttribute("data-texto", button.textContent);
      button.textContent = text;
    }

    function idle(button) {
      button.removeAttribute("aria-disabled");
      button.textContent = button.getAttribute("data-texto");
    }

    function render(state) {
      heading.textContent = titleText(state);
      situation.textContent = statusText(state);
      notice.textContent = state.aviso ? sentence(state.aviso) : "";
      notice.hidden = !state.aviso;
      timeline.textContent = "";
      events(state).forEach(function (event) {
        var item = document.createElement("li");
        var title = document.createElement("p");
        title.className = "gf-evento-titulo";
        title.appendChild(document.createTextNode(event.title));
        if (event.date) {
          var time = document.createElement("time");
          time.setAttribute("datetime", event.raw);
          time.textContent = dateText(event.date);
          title.appendChild(document.createTextNode(" "));
          title.appendChild(time);
        }
        item.appendChild(title);
        if (event.text) {
          var text = document.createElement("p");
          text.className = "gf-evento-texto";
          text.textContent = event.text;
          item.appendChild(text);
        }
        timeline.appendChild(item);
      });
      var closed = state.chamado && state.chamado.status_codigo === CLOSED;
      var open = (state.status === "criado" && !closed) || state.status === "enfileirado";
      complementForm.hidden = !open;
      noComplement.hidden = open;
      noComplement.textContent = "";
      if (closed) {
        noComplement.textContent = "Este chamado está fechado e não recebe mais informações. Se o problema voltou, ";
        var anchor = document.createElement("a");
        anchor.href = formPage;
        anchor.textContent = "abra um novo chamado";
        noComplement.appendChild(anchor);
        noComplement.appendChild(document.createTextNode("."));
      } else if (state.status === "enfileirado") {
        noComplement.hidden = false;
        noComplement.textContent = "O chamado ainda não foi aberto: a informação que você enviar fica na fila e " +
          "entra no chamado logo depois que ele for aberto.";
      } else {
        noComplement.hidden = true;
      }
      section.hidden = false;
    }

    /* Where the page is, with this protocol: a reload or a bookmark shows the same ticket. */
    function rememberInAddress(protocol) {
      if (!window.history || !history.replaceState) { return; }
      var address = new URL(location.href);
      if (address.searchParams.get("protocolo") === protocol) { return; }
      address.searchParams.set("protocolo", protocol);
      history.replaceState(history.state, "", address.href);
    }

    function lookupRefused(reply) {
      var answer = reply.answer;
      if (reply.status === 404) {
        section.hidden = true;
        shown = null;
        setFieldError(protocolField, NOT_FOUND);
        showMessage(result, "erro", NOT_FOUND);
        return true;
      }
      if (reply.status === 429) {
        showMessage(result, "erro", "Muitas consultas seguidas. Aguarde " + waitText(reply.retryAfter) + " e tente de novo.");
      } else if (reply.status === 401 || reply.status === 403) {
        showMessage(result, "erro", MISCONFIGURED);
      } else if (reply.status === 503) {
        showMessage(result, "erro", UNAVAILABLE);
      } else {
        showMessage(result, "erro", (answer && answer.erro ? sentence(answer.erro) : "Erro inesperado (HTTP " + reply.status +
          ").") + " " + DEFAULT_ADVICE);
      }
      return false;
    }

    /* Look the protocol up and show its state; `byPerson`: the person asked, so focus goes to the
       answer (the ticket's heading, or the protocol field with its error). */
    function lookup(protocol, byPerson) {
      if (looking) { return; }
      looking = true;
      busy(lookupButton, "Consultando…");
      refreshButton.setAttribute("aria-disabled", "true");
      var headers = {"Accept": "application/json"};
      if (formKey) { headers["X-API-Key"] = formKey; }
      fetch(gatewayUrl("chamados/" + protocol), {headers: headers, credentials: "omit", cache: "no-store"})
        .then(readAnswer)
        .then(function (reply) {
          if (reply.status === 200 && reply.answer) {
            shown = protocol;
            setFieldError(protocolField, "");
            render(reply.answer);
            showMessage(result, "", titleText(reply.answer) + ": " + statusText(reply.answer) + ". Consultado às " +
              timeText(new Date()) + ".");
            rememberInAddress(protocol);
            if (byPerson) { heading.focus(); }
          } else if (lookupRefused(reply) && byPerson) {
            protocolField.focus();
          }
        })
        .catch(function () {
          showMessage(result, "erro", NETWORK_ERROR);
        })
        .then(function () {
          looking = false;
          idle(lookupButton);
          refreshButton.removeAttribute("aria-disabled");
        });
    }

    function complementRefused(reply) {
      var answer = reply.answer || {};
      var codigo = answer.codigo;
      if (reply.status === 400 && answer.campos) {
        var names = Array.isArray(answer.campos) ? answer.campos : Object.keys(answer.campos);
        var first = null;
        names.forEach(function (name) {
          if (name === ATTACHMENTS_FIELD && attachments.present && !Array.isArray(answer.campos)) {
            attachments.setError(String(answer.campos[name]));
            return;
          }
          var field = name === "nome" ? nameField : messageField;
          var reason = Array.isArray(answer.campos) ? "Escreva a mensagem." : sentence(answer.campos[name]);
          setFieldError(field, reason);
          first = first || field;
        });
        showMessage(complementResult, "erro", sentence(answer.erro || "Dados inválidos") + " Corrija o campo indicado.");
        if (first) { first.focus(); } else { attachments.focus(); }
      } else if (codigo === "chamado_fechado") {
        showMessage(complementResult, "erro", "Este chamado está fechado e não recebe mais informações. Se o problema " +
          "voltou, abra um novo chamado.", {text: "Abrir um novo chamado", href: formPage});
      } else if (codigo === "chamado_ainda_na_fila") {
        showMessage(complementResult, "erro", "O chamado ainda não foi aberto (o pedido está na fila). Envie a informação " +
          "quando ele aparecer como aberto.");
      } else if (codigo === "pedido_em_andamento") {
        showMessage(complementResult, "erro", "O envio anterior ainda está sendo processado. Aguarde alguns segundos e " +
          "clique em Enviar informação de novo: a mensagem não será duplicada.");
      } else if (codigo === "desafio_invalido") {
        showMessage(complementResult, "erro", "Não foi possível verificar o envio. Aguarde alguns segundos e clique em " +
          "Enviar informação de novo.");
      } else if (reply.status === 404) {
        showMessage(complementResult, "erro", NOT_FOUND);
      } else if (reply.status === 429) {
        showMessage(complementResult, "erro", "Muitos envios seguidos. Aguarde " + waitText(reply.retryAfter) +
          " e tente de novo.");
      } else if (reply.status === 401 || reply.status === 403) {
        showMessage(complementResult, "erro", MISCONFIGURED);
      } else if (reply.status === 503) {
        showMessage(complementResult, "erro", UNAVAILABLE + " A sua mensagem continua aqui.");
      } else {
        showMessage(complementResult, "erro", (answer.erro ? sentence(answer.erro) : "Erro inesperado (HTTP " + reply.status +
          ").") + " " + DEFAULT_ADVICE);
      }
    }

    function sendComplement(protocol, message, name) {
      sending = true;
      busy(sendButton, "Enviando…");
      complementForm.setAttribute("aria-busy", "true");
      var body = {mensagem: message};
      if (name) { body.nome = name; }
      var payload = JSON.stringify(body);
      var files = attachments.files();
      var url = gatewayUrl("chamados/" + protocol + "/complemento");
      var headers = {"Accept": "application/json",
        "Idempotency-Key": keys.keyFor(protocol + payload + filesFingerprint(files))};
      credentials.headers().then(function (keyAndProof) {
        Object.keys(keyAndProof).forEach(function (header) { headers[header] = keyAndProof[header]; });
        if (files.length) {
          return postMultipart(url, headers, body, files, attachments).then(function (reply) {
            var answer = null;
            try { answer = JSON.parse(reply.text); } catch (notJson) { answer = null; }
            return {status: reply.status, answer: answer, retryAfter: null};
          });
        }
        headers["Content-Type"] = "application/json";
        return fetch(url, {method: "POST", headers: headers, body: payload, credentials: "omit"}).then(readAnswer);
      }).then(function (reply) {
        keys.settle(reply.status);
        if (reply.status === 201 || reply.status === 202) {
          messageField.value = "";
          attachments.clear();
          showMessage(complementResult, "sucesso", (reply.status === 201 ? "Informação enviada: ela já está no chamado." :
            QUEUED_MESSAGE) + pendingAttachments(reply.answer) + failedAttachments(reply.answer));
          lookup(protocol, false);
        } else {
          complementRefused(reply);
        }
      }).catch(function () {
        showMessage(complementResult, "erro", NETWORK_ERROR + " A sua mensagem continua aqui.");
      }).then(function () {
        attachments.progressDone();
        sending = false;
        idle(sendButton);
        complementForm.removeAttribute("aria-busy");
      });
    }

    lookupForm.addEventListener("submit", function (event) {
      event.preventDefault();
      if (looking) { return; }
      var protocol = protocolField.value.replace(/\s+/g, "").toLowerCase();
      var problem = !protocol ? "Informe o protocolo." : PROTOCOL.test(protocol) ? "" :
        "O protocolo tem 32 caracteres, números e letras de a a f: confira se falta ou sobra algum.";
      setFieldError(protocolField, problem);
      if (problem) {
        showMessage(result, "erro", problem);
        protocolField.focus();
        return;
      }
      protocolField.value = protocol;
      if (protocol !== shown) {
        section.hidden = true;
        shown = null;
      }
      showMessage(complementResult, "", "");
      lookup(protocol, true);
    });

    refreshButton.addEventListener("click", function () {
      if (shown) { lookup(shown, false); }
    });

    complementForm.addEventListener("submit", function (event) {
      event.preventDefault();
      if (sending || !shown) { return; }
      var message = messageField.value.trim();
      setFieldError(messageField, message ? "" : "Escreva a mensagem.");
      setFieldError(nameField, "");
      if (!message) {
        showMessage(complementResult, "erro", "Escreva a mensagem antes de enviar.");
        messageField.focus();
        return;
      }
      sendComplement(shown, message, nameField.value.trim());
    });
    // The challenge (with the public key) is solved while the person writes.
    messageField.addEventListener("focus", credentials.prepare);

    var given = new URLSearchParams(location.search).get("protocolo");
    if (given) {
      protocolField.value = given.replace(/\s+/g, "").toLowerCase();
      if (PROTOCOL.test(protocolField.value)) {
        lookup(protocolField.value, false);
      } else {
        setFieldError(protocolField, NOT_FOUND);
        showMessage(result, "erro", NOT_FOUND);
      }
    }
  }

  startIn("#acompanhar-chamado", mount, "glpi-acompanhar-altura");
})();
