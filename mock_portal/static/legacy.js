/* Mock DHgate seller backend, legacy layout: the left menu, the order list drawn from
 * ORDER_DATA, and the cancel pop-up. Written the way jQuery-era backends were: plain
 * functions, ids, class names and string-built HTML; no framework, no network calls. */
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  function hasClass(el, name) {
    return (" " + el.className + " ").indexOf(" " + name + " ") >= 0;
  }
  function addClass(el, name) {
    if (!hasClass(el, name)) el.className = (el.className ? el.className + " " : "") + name;
  }
  function removeClass(el, name) {
    el.className = (" " + el.className + " ").replace(" " + name + " ", " ").replace(/^\s+|\s+$/g, "");
  }
  function bind(el, type, fn) { el.addEventListener(type, fn, false); }
  function each(list, fn) { for (var i = 0; i < list.length; i++) fn(list[i], i); }

  function esc(value) {
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  /* -- left menu: a group opens on hover or click and closes when the mouse leaves -- */
  function initMenu() {
    each(document.getElementsByClassName("menu-group"), function (group) {
      bind(group, "mouseenter", function () { addClass(group, "open"); });
      bind(group, "mouseleave", function () { removeClass(group, "open"); });
      bind(group, "click", function () { addClass(group, "open"); });
    });
  }

  /* -- order list: rows come from ORDER_DATA, drawn after a delay as an XHR page would -- */
  function drawRows(data) {
    var tbody = $("orderTable").getElementsByTagName("tbody")[0];
    if (!data.rows.length) {
      $("emptyTip").style.display = "block";
      return;
    }
    var html = "";
    each(data.rows, function (row) {
      html += "<tr>" +
        '<td><a href="/orders/detail/' + esc(row.id) + '" target="_blank">' + esc(row.order_no) + "</a></td>" +
        "<td>" + esc(row.time) + "</td>" +
        "<td>" + esc(row.buyer) + '<br /><span class="gray">' + esc(row.country) + "</span></td>" +
        "<td>" + esc(row.product) +
          (row.items > 1 ? ' <span class="gray">等' + row.items + "件商品</span>" : "") + "</td>" +
        "<td>" + esc(row.amount) + "</td>" +
        '<td class="status">' + esc(row.status) + "</td>" +
        "</tr>";
    });
    tbody.innerHTML = html;
  }

  function drawPager(data) {
    var box = $("pagination");
    var cur = data.page_no;
    var html = "";
    if (cur > 1) html += '<a href="javascript:;" class="page-prev" data-page="' + (cur - 1) + '">上一页</a>';
    for (var n = Math.max(1, cur - 4); n <= Math.min(data.pages, cur + 4); n++) {
      html += n === cur ? '<span class="page-cur">' + n + "</span>"
        : '<a href="javascript:;" class="page-num" data-page="' + n + '">' + n + "</a>";
    }
    if (cur < data.pages) html += '<a href="javascript:;" class="page-next" data-page="' + (cur + 1) + '">下一页</a>';
    html += '<span class="page-total">共 ' + data.pages + " 页</span>";
    box.innerHTML = html;
    each(box.getElementsByTagName("a"), function (link) {
      bind(link, "click", function () {
        var form = $("pageForm");
        form.elements.page.value = link.getAttribute("data-page");
        form.submit();
      });
    });
  }

  function initOrderList() {
    var data = window.ORDER_DATA;
    if (!data || !$("orderTable")) return;
    bind($("searchBtn"), "click", function () { $("searchForm").submit(); });
    window.setTimeout(function () {
      drawRows(data);
      if (data.rows.length) drawPager(data);
    }, data.delay_ms || 0);
  }

  /* -- cancel pop-up: a div mask, a home-made dropdown and the browser's confirm() -- */
  function initDropdown(box) {
    var text = box.getElementsByClassName("dropdown-text")[0];
    var input = box.getElementsByTagName("input")[0];
    bind(text, "click", function (event) {
      event.stopPropagation();
      if (hasClass(box, "open")) removeClass(box, "open"); else addClass(box, "open");
    });
    each(box.getElementsByTagName("li"), function (item) {
      bind(item, "click", function (event) {
        event.stopPropagation();
        input.value = item.getAttribute("data-value");
        text.innerHTML = esc(item.textContent);
        removeClass(box, "open");
      });
    });
    bind(document, "click", function () { removeClass(box, "open"); });
  }

  function initCancel() {
    var mask = $("cancelMask");
    if (!mask || !$("cancelBtn")) return;
    var form = $("cancelForm");
    var err = form.getElementsByClassName("err")[0];
    var max = parseInt(form.getAttribute("data-note-max"), 10) || 500;
    var needsNote = (form.getAttribute("data-note-required") || "").split(" ");
    var sent = false;
    initDropdown($("reasonBox"));

    function check() {
      var reason = form.elements.reason.value;
      var note = form.elements.note.value;
      if (!reason) return "请选择取消原因";
      if (needsNote.indexOf(reason) >= 0 && !note.replace(/^\s+|\s+$/g, "")) return "请填写详细说明";
      if (note.length > max) return "详细说明不能超过" + max + "个字";
      return "";
    }

    bind($("cancelBtn"), "click", function () {
      err.innerHTML = "";
      addClass(mask, "show");
    });
    bind($("cancelClose"), "click", function () { removeClass(mask, "show"); });
    bind($("cancelSubmit"), "click", function () {
      var problem = check();
      err.innerHTML = esc(problem);
      if (problem || sent) return;
      if (!window.confirm(form.getAttribute("data-confirm"))) return;
      sent = true; // one click, one request
      form.submit();
    });
  }

  bind(document, "DOMContentLoaded", function () {
    initMenu();
    initOrderList();
    initCancel();
  });
})();
