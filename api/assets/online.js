// 网上验证: check each chosen file against its rule before the form is sent
// (size; the portrait's 480×640 pixels), so that a phone does not upload 20 MB
// to be told so; say that the form is on its way. The server checks again;
// without script the form is sent as it is.
"use strict";
(function () {
  var form = document.getElementById("online-form");
  if (!form) return;
  var inputs = form.querySelectorAll("input[type=file][data-max]");

  function size(n) {
    return n >= 1048576 ? (n / 1048576).toFixed(1) + " MB" : Math.ceil(n / 1024) + " KB";
  }

  // say shows (or clears) the script's message beside an input; the
  // server's message about the file sent before goes once another is chosen.
  function say(input, msg) {
    var field = input.closest(".field");
    var errs = field.querySelectorAll(".field-error:not(.js-error)");
    for (var i = 0; i < errs.length; i++) errs[i].hidden = true;
    var mine = field.querySelector(".js-error");
    mine.textContent = msg;
    mine.hidden = !msg;
  }

  function check(input) {
    var file = input.files && input.files[0];
    say(input, "");
    if (!file) return;
    var max = Number(input.getAttribute("data-max"));
    var name = input.getAttribute("data-name");
    if (file.size > max) {
      say(input, name + "不能超过 " + input.getAttribute("data-limit") + "（所选文件 " + size(file.size) + "）");
      return;
    }
    var w = Number(input.getAttribute("data-width")), h = Number(input.getAttribute("data-height"));
    if (w && h && window.URL && URL.createObjectURL) {
      var img = new Image();
      var url = URL.createObjectURL(file);
      img.onload = function () {
        URL.revokeObjectURL(url);
        if (input.files[0] !== file) return;
        if (img.naturalWidth !== w || img.naturalHeight !== h) {
          say(input, name + "须为 " + w + "×" + h + " 像素（宽×高），所选照片是 " + img.naturalWidth + "×" + img.naturalHeight);
        }
      };
      img.onerror = function () { URL.revokeObjectURL(url); }; // not an image: the server says so
      img.src = url;
    }
  }

  for (var i = 0; i < inputs.length; i++) {
    inputs[i].addEventListener("change", function (e) { check(e.target); });
  }

  form.addEventListener("submit", function (e) {
    var shown = form.querySelector(".js-error:not([hidden])");
    if (shown) {
      e.preventDefault();
      shown.closest(".field").querySelector("input").focus();
      return;
    }
    var sending = document.getElementById("online-sending");
    if (sending) sending.hidden = false;
  });
})();
