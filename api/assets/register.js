// 新生注册: the majors of the chosen level only; the 专升本 fields only for
// 本科(专升本); the chosen exam area's office and window.
"use strict";
(function () {
  var level = document.getElementById("application-level");
  var major = document.getElementById("application-major_code");
  var area = document.getElementById("application-exam_area_code");
  var zsb = document.getElementById("zsb-fields");
  var info = document.getElementById("area-info");
  if (!level || !major) return;
  function showLevel() {
    var groups = major.querySelectorAll("optgroup");
    for (var i = 0; i < groups.length; i++) {
      var on = !level.value || groups[i].getAttribute("data-level") === level.value;
      groups[i].hidden = !on;
      groups[i].disabled = !on;
    }
    var chosen = major.options[major.selectedIndex];
    if (chosen && chosen.getAttribute("data-level") && level.value && chosen.getAttribute("data-level") !== level.value) {
      major.value = "";
    }
    if (zsb) zsb.hidden = level.value === "zhuanke";
  }
  function showArea() {
    var o = area && area.options[area.selectedIndex];
    if (!info || !o || !o.value) { if (info) info.hidden = true; return; }
    info.textContent = "现场确认地点：" + o.getAttribute("data-office") + "；时间：" + o.getAttribute("data-window");
    info.hidden = false;
  }
  level.addEventListener("change", showLevel);
  if (area) area.addEventListener("change", showArea);
  showLevel();
  showArea();
})();
