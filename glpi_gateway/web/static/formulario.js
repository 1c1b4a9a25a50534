/* Contact form of the GLPI ticket gateway.
 *
 * Builds the form inside the element chosen by the script tag's data-alvo attribute
 * (default #formulario-chamado), checks the fields with the same rules as the server
 * and posts JSON to the gateway's criar-chamado (comum.js: gatewayUrl). With API keys on,
 * the gateway writes the form's public key (FORM_API_KEY_NAME) below and every post
 * carries it in X-API-Key. With files attached (chosen or pasted), the post is
 * multipart/form-data instead, sent with XMLHttpRequest for its upload progress; the
 * gateway writes the limits it checks files against below too (form.py). The success
 * message links to the gateway's /acompanhar page for the ticket's protocol.
 */
(function () {
  "use strict";

/* COMUM */

  var endpoint = gatewayUrl("criar-chamado");
  var followPage = gatewayUrl("acompanhar");
  var formKey = /* FORM_API_KEY */ null;
  // {maxCount, maxBytes, extensions}: the server's limits for files (form.attachment_limits).
  var attachmentLimits = /* ATTACHMENT_LIMITS */ null;
  var instances = 0;

  var FIRST_WEIGHTS = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
  var SECOND_WEIGHTS = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
  // The server's e-mail rule (validation.py): HTML5's definition plus a dot in the domain.
  var EMAIL = /^[A-Za-z0-9.!#$%&'*+\/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

  var FIELDS = [
    {name: "nome", server: "nome_cliente", label: "Nome", required: true,
      attrs: 'type="text" autocomplete="name" maxlength="255"'},
    {name: "telefone", server: "telefone_cliente", label: "Telefone com DDD", required: true,
      hint: "Para número de fora do Brasil, comece com +. Ex.:", examples: ["(11) 99999-0000"],
      attrs: 'type="tel" inputmode="tel" autocomplete="tel" maxlength="40"'},
    {name: "cnpj", server: "cnpj_cliente", label: "CNPJ da empresa", required: true,
      hint: "Só números ou com letras, ex.:", examples: ["11.222.333/0001-81", "12.ABC.345/01DE-35"],
      attrs: 'type="text" autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="32"'},
    {name: "anydesk", server: "anydesk_cliente", label: "ID do AnyDesk", required: true,
      hint: "O número em “Este local de trabalho” no AnyDesk, ex.:", examples: ["123 456 789"],
      attrs: 'type="text" autocomplete="off" spellcheck="false" maxlength="64"'},
    {name: "email", server: "email_cliente", label: "E-mail (opcional)", required: false,
      hint: "Para receber as atualizações do chamado.",
      attrs: 'type="email" autocomplete="email" spellcheck="false" maxlength="254"'},
    {name: "descricao", server: "descricao_problema", label: "Descrição do problema", required: true,
      hint: "O que aconteceu, desde quando e o que já foi tentado.", multiline: true,
      attrs: 'rows="6" maxlength="10000"'}
  ];

  var ADVICE = {
    401: "O serviço de chamados está com a configuração incorreta. Avise o suporte por telefone.",
    403: "Não foi possível verificar o envio. Aguarde alguns segundos e clique em Abrir chamado de novo.",
    404: "Confira o CNPJ. Se ele estiver correto, fale com o suporte por telefone.",
    409: "Fale com o suporte por telefone para abrir o chamado.",
    413: "Encurte a descrição e tente de novo.",
    429: "Muitos envios seguidos. Aguarde um pouco e tente de novo.",
    503: "O sistema de chamados está fora do ar. Tente de novo em alguns minutos."
  };
  var ATTACHMENTS_TOO_BIG = "Os anexos passam do limite do servidor. Remova algum arquivo e tente de novo.";
  var DEFAULT_ADVICE = "Tente de novo em alguns minutos. Se o problema continuar, fale com o suporte por telefone.";

  // --- CNPJ rule, identical to cnpj.py ---------------------------------------------

  function normalizeCnpj(value) {
    return String(value).replace(/[\s.\/-]/g, "").toUpperCase();
  }

  function checkDigit(characters, weights) {
    var total = 0;
    for (var i = 0; i < weights.length; i++) {
      total += (characters.charCodeAt(i) - 48) * weights[i];
    }
    var remainder = total % 11;
    return remainder < 2 ? 0 : 11 - remainder;
  }

  function isValidCnpj(value) {
    var cnpj = normalizeCnpj(value);
    if (!/^[0-9A-Z]{12}[0-9]{2}$/.test(cnpj)) {
      return false;
    }
    var first = checkDigit(cnpj.slice(0, 12), FIRST_WEIGHTS);
    var second = checkDigit(cnpj.slice(0, 12) + first, SECOND_WEIGHTS);
    return cnpj.slice(12) === String(first) + String(second);
  }

  // --- masks ------------------------------------------------------------------------

  var cnpjMask = {
    significant: /[0-9A-Za-z]/,
    clean: function (value) { return value.toUpperCase().replace(/[^0-9A-Z]/g, "").slice(0, 14); },
    format: function (c) {
      var parts = [c.slice(0, 2), c.slice(2, 5), c.slice(5, 8), c.slice(8, 12), c.slice(12, 14)];
      var separators = [".", ".", "/", "-"];
      var text = parts[0];
      for (var i = 1; i < parts.length && parts[i]; i++) {
        text += separators[i - 1] + parts[i];
      }
      return text;
    }
  };

  var phoneMask = {
    significant: /[0-9]/,
    clean: function (value) { return value.replace(/[^0-9]/g, "").slice(0, 11); },
    format: function (d) {
      if (!d) { return ""; }
      if (d.length <= 2) { return "(" + d; }
      var local = d.slice(2);
      var split = d.length === 11 ? 5 : 4;
      if (local.length <= split) { return "(" + d.slice(0, 2) + ") " + local; }
      return "(" + d.slice(0, 2) + ") " + local.slice(0, split) + "-" + local.slice(split);
    }
  };

  /* Reformat the field and keep the caret after the same number of significant characters. */
  function applyMask(field, mask) {
    var value = field.value;
    var before = mask.clean(value.slice(0, field.selectionStart || 0)).length;
    var formatted = mask.format(mask.clean(value));
    if (formatted === value) { return; }
    field.value = formatted;
    var caret = 0;
    for (var seen = 0; caret < formatted.length && seen < before; caret++) {
      if (mask.significant.test(formatted.charAt(caret))) { seen++; }
    }
    if (document.activeElement === field) { field.setSelectionRange(caret, caret); }
  }

  // --- markup -----------------------------------------------------------------------

  /* Examples never break across lines (a CNPJ split at its hyphen reads as two values). */
  function hintMarkup(field) {
    var examples = (field.examples || []).map(function (example) {
      return '<span class="gf-exemplo">' + escapeHtml(example) + "</span>";
    });
    return escapeHtml(field.hint) + (examples.length ? " " + examples.join(" ou ") + "." : "");
  }

  function fieldMarkup(prefix, field) {
    var id = prefix + "-" + field.name;
    var describedBy = (field.hint ? id + "-dica " : "") + id + "-erro";
    var control = field.multiline ? "textarea" : "input";
    var required = field.required ? " required" : "";
    return '<div class="gf-campo">' +
      '<label for="' + id + '">' + escapeHtml(field.label) +
      (field.required ? ' <span class="gf-obrigatorio" aria-hidden="true">*</span>' : "") + "</label>" +
      (field.hint ? '<p class="gf-dica" id="' + id + '-dica">' + hintMarkup(field) + "</p>" : "") +
      "<" + control + ' id="' + id + '" name="' + field.server + '" ' + field.attrs + required +
      ' aria-describedby="' + describedBy + '">' + (field.multiline ? "</textarea>" : "") +
      '<p class="gf-erro" id="' + id + '-erro"></p>' +
      "</div>";
  }

  /* A field people never see nor reach (hidden from view, from the keyboard and from screen
     readers); bots that fill every input fill it, and the gateway refuses their submission. */
  function honeypotMarkup(prefix) {
    return '<div class="gf-armadilha" aria-hidden="true">' +
      '<label for="' + prefix + '-website">Não preencha este campo</label>' +
      '<input id="' + prefix + '-website" name="website" type="text" tabindex="-1" autocomplete="off">' +
      "</div>";
  }

  function formMarkup(prefix) {
    return '<form class="gf" method="post" novalidate>' +
      '<p class="gf-nota">Campos marcados com * são obrigatórios.</p>' +
      FIELDS.map(function (field) { return fieldMarkup(prefix, field); }).join("") + attachmentsMarkup(prefix, attachmentLimits) +
      honeypotMarkup(prefix) +
      '<button type="submit" class="gf-enviar">Abrir chamado</button>' + progressMarkup(prefix, attachmentLimits) +
      '<div class="gf-resultado" role="status" aria-live="polite"></div>' +
      "</form>";
  }

  // --- one form ---------------------------------------------------------------------

  function mount(container) {
    instances += 1;
    var prefix = "gf" + instances;
    container.innerHTML = formMarkup(prefix);
    var form = container.querySelector("form");
    var button = form.querySelector(".gf-enviar");
    var result = form.querySelector(".gf-resultado");
    var controls = {};
    FIELDS.forEach(function (field) { controls[field.name] = form.querySelector("#" + prefix + "-" + field.name); });
    var sending = false;
    var attachments = mountAttachments(form, prefix, attachmentLimits, "Anexos enviados. Abrindo o chamado…");

    function fieldWhere(key, value) {
      for (var i = 0; i < FIELDS.length; i++) {
        if (FIELDS[i][key] === value) { return FIELDS[i]; }
      }
      return null;
    }

    function setFieldError(field, message) {
      var control = controls[field.name];
      var slot = form.querySelector("#" + prefix + "-" + field.name + "-erro");
      slot.textContent = message;
      if (message) {
        control.setAttribute("aria-invalid", "true");
      } else {
        control.removeAttribute("aria-invalid");
      }
    }

    function showResult(kind, message, link) {
      showMessage(result, kind, message, link);
    }

    function clearErrors() {
      FIELDS.forEach(function (field) { setFieldError(field, ""); });
      attachments.setError("");
      showResult("", "");
    }

    /* Field errors in form order; focus goes to the first one. */
    function showFieldErrors(errors) {
      var first = null;
      FIELDS.forEach(function (field) {
        if (errors[field.name]) {
          setFieldError(field, errors[field.name]);
          first = first || controls[field.name];
        }
      });
      if (first) { first.focus(); }
    }

    function values() {
      var data = {};
      FIELDS.forEach(function (field) { data[field.name] = controls[field.name].value.trim(); });
      return data;
    }

    function fieldError(field, value) {
      if (!value) {
        return field.required ? "Preencha este campo." : "";
      }
      if (field.name === "telefone" && value.charAt(0) !== "+" && !/^[0-9]{10,11}$/.test(phoneMask.clean(value))) {
        return "Informe o telefone com DDD, ex.: (11) 99999-0000.";
      }
      if (field.name === "cnpj") {
        if (normalizeCnpj(value).length !== 14) { return "O CNPJ tem 14 caracteres: confira se falta algum."; }
        if (!isValidCnpj(value)) { return "CNPJ inválido: confira os dígitos."; }
      }
      if (field.name === "email" && !EMAIL.test(value)) {
        return "E-mail inválido: confira o endereço, ex.: nome@empresa.com.br.";
      }
      return "";
    }

    function validate(data) {
      var errors = {};
      FIELDS.forEach(function (field) {
        var message = fieldError(field, data[field.name]);
        if (message) { errors[field.name] = message; }
      });
      return errors;
    }

    function body(data) {
      var payload = {};
      FIELDS.forEach(function (field) {
        if (data[field.name]) { payload[field.server] = data[field.name]; }
      });
      var honeypot = form.querySelector("#" + prefix + "-website").value;
      if (honeypot) { payload.website = honeypot; }
      return payload;
    }

    /* A 400 names fields as a list (missing) or a map (field -> reason). */
    function showServerFieldErrors(answer) {
      var errors = {};
      var others = [];
      var attachmentsReason = "";
      var campos = answer.campos || {};
      var names = Array.isArray(campos) ? campos : Object.keys(campos);
      names.forEach(function (serverName) {
        var field = fieldWhere("server", serverName);
        var reason = Array.isArray(campos) ? "Preencha este campo." : sentence(campos[serverName]);
        if (serverName === ATTACHMENTS_FIELD && attachments.present && !Array.isArray(campos)) {
          // Reasons that start with a file name keep its case: "print.png: maior que o limite…".
          attachmentsReason = String(campos[serverName]) + (/[.!?]$/.test(campos[serverName]) ? "" : ".");
        } else if (field) {
          errors[field.name] = reason;
        } else {
          others.push(serverName + ": " + reason);
        }
      });
      var general = sentence(answer.erro || "Dados inválidos");
      showResult("erro", general + " " + (others.length ? others.join(" ") : "Corrija os campos indicados."));
      showFieldErrors(errors);
      if (attachmentsReason) {
        attachments.setError(attachmentsReason);
        if (!Object.keys(errors).length) { attachments.focus(); }
      }
    }

    /* The gateway's page that follows this protocol (on the gateway's origin, also from a snippet). */
    function followLink(text, protocol) {
      return {text: text, href: followPage + "?protocolo=" + encodeURIComponent(protocol)};
    }

    function showAnswer(status, answer, withFiles) {
      if (status === 201 && answer && answer.ticket_id !== undefined) {
        form.reset();
        attachments.clear();
        showResult("sucesso", "Chamado nº " + answer.ticket_id + " aberto. Guarde este número para acompanhar o atendimento." +
          pendingAttachments(answer) + failedAttachments(answer), answer.protocolo ? followLink("Acompanhar o chamado", answer.protocolo) : null);
      } else if (status === 202 && answer && answer.protocolo !== undefined) {
        form.reset();
        attachments.clear();
        showResult("sucesso", "Pedido recebido com o protocolo " + answer.protocolo + ". O sistema de chamados " +
          "está indisponível agora; o chamado será aberto assim que ele voltar. Guarde o protocolo.",
          followLink("Acompanhar o pedido", answer.protocolo));
      } else if (status === 400 && answer && answer.campos) {
        showServerFieldErrors(answer);
      } else if (status === 409 && answer && answer.codigo === "pedido_em_andamento") {
        showResult("erro", "O envio anterior ainda está sendo processado. Aguarde alguns segundos e clique " +
          "em Abrir chamado de novo: o chamado não será duplicado.");
      } else {
        var erro = answer && answer.erro ? sentence(answer.erro) : "Erro inesperado (HTTP " + status + ").";
        var advice = status === 413 && withFiles ? ATTACHMENTS_TOO_BIG : ADVICE[status] || DEFAULT_ADVICE;
        showResult("erro", erro + " " + advice);
        if (status === 404 || status === 409) { setFieldError(fieldWhere("name", "cnpj"), erro); }
      }
    }

    var keys = submissionKeys();
    // With the public key, a challenge is solved in the background while the person types.
    var credentials = postCredentials(formKey);
    credentials.prepare();

    /* The JSON post, as {status, text}. */
    function postJson(headers, payload) {
      headers["Content-Type"] = "application/json";
      return fetch(endpoint, {
        method: "POST",
        headers: headers,
        body: payload,
        credentials: "omit"
      }).then(function (response) {
        return response.text().then(function (text) { return {status: response.status, text: text}; });
      });
    }

    function send(data) {
      sending = true;
      button.setAttribute("aria-disabled", "true");
      button.textContent = "Enviando…";
      form.setAttribute("aria-busy", "true");
      var fields = body(data);
      var payload = JSON.stringify(fields);
      var files = attachments.files();
      // The key covers the files too (name, size, last change): an edited list is another submission.
      var headers = {"Accept": "application/json", "Idempotency-Key": keys.keyFor(payload + filesFingerprint(files))};
      credentials.headers().then(function (keyAndProof) {
        Object.keys(keyAndProof).forEach(function (name) { headers[name] = keyAndProof[name]; });
        return files.length ? postMultipart(endpoint, headers, fields, files, attachments) : postJson(headers, payload);
      }).then(function (reply) {
        var answer = null;
        try { answer = JSON.parse(reply.text); } catch (notJson) { answer = null; }
        keys.settle(reply.status);
        showAnswer(reply.status, answer, files.length > 0);
        if (reply.status === 401 && window.console) {
          console.error("formulario.js: o gateway recusou a chave do formulário; confira FORM_API_KEY_NAME e " +
            "API_KEYS no gateway (README, \"Chave do formulário\")");
        }
      }).catch(function () {
        // Offline, blocked by CORS, or the connection dropped mid-answer.
        showResult("erro", NETWORK_ERROR);
      }).then(function () {
        attachments.progressDone();
        sending = false;
        button.removeAttribute("aria-disabled");
        button.textContent = "Abrir chamado";
        form.removeAttribute("aria-busy");
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (sending) { return; }
      clearErrors();
      var data = values();
      var errors = validate(data);
      if (Object.keys(errors).length) {
        showResult("erro", "Corrija os campos indicados.");
        showFieldErrors(errors);
        return;
      }
      send(data);
    });

    controls.cnpj.addEventListener("input", function () { applyMask(controls.cnpj, cnpjMask); });
    controls.telefone.addEventListener("input", function () {
      if (controls.telefone.value.trim().charAt(0) !== "+") { applyMask(controls.telefone, phoneMask); }
    });
    // A corrected field loses its error as soon as the user leaves it.
    FIELDS.forEach(function (field) {
      controls[field.name].addEventListener("blur", function () {
        if (controls[field.name].getAttribute("aria-invalid") === "true") {
          setFieldError(field, fieldError(field, controls[field.name].value.trim()));
        }
      });
    });
    return form;
  }

  window.GlpiFormulario = {cnpjValido: isValidCnpj, endpoint: endpoint};

  startIn("#formulario-chamado", mount, "glpi-formulario-altura");
})();
