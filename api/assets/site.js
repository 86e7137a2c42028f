// zikao pages: small enhancements; every form works without them.
"use strict";
document.addEventListener("submit", function (e) {
  // Forms with data-confirm ask before they are sent (撤销注册, 作废).
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    e.preventDefault();
  }
});
