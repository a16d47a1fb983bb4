/* Mock DHgate seller backend: the cancel dialogs and the slider captcha. Plain JS, no libraries. */
(function () {
  "use strict";

  function showError(box, text) {
    // The alert element exists only while there is an error, so [role=alert] never matches
    // an empty box.
    box.textContent = "";
    if (!text) return;
    var alert = document.createElement("div");
    alert.setAttribute("role", "alert");
    alert.className = "notice notice-alert";
    alert.textContent = text;
    box.appendChild(alert);
  }

  function setUpCancelDialogs() {
    var cancelDialog = document.getElementById("cancel-dialog");
    var confirmDialog = document.getElementById("confirm-dialog");
    if (!cancelDialog || !confirmDialog) return;
    var form = document.getElementById("cancel-form");
    var reason = form.querySelector("#reason");
    var note = form.querySelector("#note");
    var errors = form.querySelector("[data-errors]");
    var counter = form.querySelector("[data-counter]");
    var max = parseInt(form.getAttribute("data-note-max"), 10) || 500;
    var needsNote = (form.getAttribute("data-note-required") || "").split(" ");

    document.querySelectorAll("[data-open-dialog]").forEach(function (button) {
      button.addEventListener("click", function () {
        showError(errors, "");
        cancelDialog.showModal();
      });
    });
    cancelDialog.querySelector("[data-close-dialog]").addEventListener("click", function () {
      cancelDialog.close();
    });
    note.addEventListener("input", function () {
      counter.textContent = note.value.length + "/" + max;
    });

    function validate() {
      if (!reason.value) return "请选择取消原因";
      if (needsNote.indexOf(reason.value) >= 0 && !note.value.trim()) return "请填写详细说明";
      if (note.value.length > max) return "详细说明不能超过" + max + "个字";
      return "";
    }

    form.querySelector("[data-cancel-submit]").addEventListener("click", function () {
      var problem = validate();
      showError(errors, problem);
      if (problem) return;
      cancelDialog.close();
      confirmDialog.showModal();
    });
    confirmDialog.querySelector("[data-confirm-back]").addEventListener("click", function () {
      confirmDialog.close();
      cancelDialog.showModal();
    });
    form.addEventListener("submit", function (event) {
      var problem = validate();
      if (problem) {
        event.preventDefault();
        confirmDialog.close();
        cancelDialog.showModal();
        showError(errors, problem);
        return;
      }
      // One click, one request: a second click on 确定 does nothing.
      var confirm = confirmDialog.querySelector("[data-confirm]");
      if (confirm.getAttribute("data-sent")) {
        event.preventDefault();
        return;
      }
      confirm.setAttribute("data-sent", "1");
    });
  }

  function setUpCaptcha() {
    var box = document.querySelector("[data-captcha]");
    if (!box) return;
    var track = box.querySelector("[data-track]");
    var knob = box.querySelector("[data-knob]");
    var fill = box.querySelector("[data-fill]");
    var piece = box.querySelector("[data-piece]");
    var result = box.querySelector("[data-result]");
    var input = box.querySelector("input[name=captcha_token]");
    var dragging = false;
    var startX = 0;
    var offset = 0;
    var solved = false;

    function maxOffset() {
      return track.clientWidth - knob.offsetWidth;
    }
    function place(x) {
      offset = Math.max(0, Math.min(x, maxOffset()));
      knob.style.transform = "translateX(" + offset + "px)";
      fill.style.width = offset + knob.offsetWidth / 2 + "px";
      var picture = piece.parentElement.clientWidth - piece.offsetWidth;
      piece.style.transform = "translateX(" + (offset / Math.max(1, maxOffset())) * picture + "px)";
    }

    knob.addEventListener("mousedown", function (event) {
      if (solved) return;
      dragging = true;
      startX = event.clientX - offset;
      event.preventDefault();
    });
    document.addEventListener("mousemove", function (event) {
      if (dragging) place(event.clientX - startX);
    });
    document.addEventListener("mouseup", function () {
      if (!dragging) return;
      dragging = false;
      if (offset >= maxOffset() - 3) {
        solved = true;
        input.value = box.getAttribute("data-token");
        box.classList.add("solved");
        result.textContent = "验证通过";
      } else {
        result.textContent = "请将滑块拖动到最右侧";
        place(0);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpCancelDialogs();
    setUpCaptcha();
  });
})();
