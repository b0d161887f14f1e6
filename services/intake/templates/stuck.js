// "Stuck now" refreshes itself: every few seconds it fetches the table's fragment from the
// project and puts it in place of the old one. A button pauses it (WCAG 2.2.1). Without this
// script the page is a plain page: reloading it refreshes it.
(function () {
  "use strict";
  var region = document.getElementById("ton-dong");
  var controls = document.getElementById("tu-cap-nhat");
  if (!region || !controls || !window.fetch) {
    return;
  }
  var button = document.getElementById("tam-dung");
  var state = document.getElementById("trang-thai");
  var url = region.getAttribute("data-fragment");
  var seconds = Number(region.getAttribute("data-refresh-seconds")) || 30;
  var timer = null;
  var paused = false;

  function schedule() {
    if (!paused && timer === null) {
      timer = window.setTimeout(refresh, seconds * 1000);
    }
  }

  function replace(html) {
    // Keep the keyboard focus on the same link if it is still there.
    var focused = region.contains(document.activeElement) ? document.activeElement : null;
    var href = focused && focused.getAttribute("href");
    region.innerHTML = html;
    if (href) {
      var again = region.querySelector('a[href="' + href.replace(/"/g, '\\"') + '"]');
      if (again) {
        again.focus();
      }
    }
  }

  function refresh() {
    timer = null;
    var request = { credentials: "same-origin", redirect: "manual", headers: { Accept: "text/html" } };
    window.fetch(url, request)
      .then(function (response) {
        if (response.type === "opaqueredirect") {
          throw new Error("signed-out");
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (paused) {
          return; // paused while the request was under way: the table stays as it is
        }
        replace(html);
        state.textContent = "";
      })
      .catch(function (error) {
        if (error.message === "signed-out") {
          state.textContent = "Phiên đăng nhập đã hết: hãy tải lại trang để đăng nhập lại.";
          paused = true;
          button.hidden = true;
        } else if (!paused) {
          state.textContent = "Chưa cập nhật được (" + error.message + "); sẽ thử lại.";
        }
      })
      .then(schedule);
  }

  button.addEventListener("click", function () {
    paused = !paused;
    button.textContent = paused ? "Tiếp tục tự cập nhật" : "Tạm dừng tự cập nhật";
    state.textContent = paused ? "Đã tạm dừng." : "";
    if (paused && timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
    if (!paused) {
      refresh();
    }
  });

  controls.hidden = false;
  schedule();
})();
