// 现场确认: take the photo with the device's camera (getUserMedia) into the
// file input; check that the chosen photo is a JPEG (FF D8 FF) before the
// form is sent (the server checks again). Without script, or without a
// camera, the file input (capture) is used as it is.
"use strict";
(function () {
  var form = document.getElementById("onsite-form");
  var input = document.getElementById("photo");
  if (!form || !input) return;
  var openBtn = document.getElementById("camera-open");
  var box = document.getElementById("camera");
  var video = document.getElementById("camera-video");
  var shoot = document.getElementById("camera-shoot");
  var preview = document.getElementById("photo-preview");
  var error = document.getElementById("photo-error");
  var checked = false;

  // isJPEG resolves to whether a file starts as a JPEG does (FF D8 FF).
  function isJPEG(file) {
    return file.slice(0, 3).arrayBuffer().then(function (buf) {
      var b = new Uint8Array(buf);
      return b.length === 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
    });
  }

  // show previews a chosen photo, or says it is not a JPEG.
  function show(file) {
    if (!preview || !file || !file.slice) return;
    isJPEG(file).then(function (ok) {
      preview.hidden = !ok;
      error.hidden = ok;
      if (ok) preview.src = URL.createObjectURL(file);
    });
  }

  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.DataTransfer) {
    openBtn.hidden = false;
    openBtn.addEventListener("click", function () {
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false }).then(function (stream) {
        video.srcObject = stream;
        box.hidden = false;
        openBtn.hidden = true;
      }).catch(function () {
        openBtn.hidden = true; // no camera: the file input remains
      });
    });
    shoot.addEventListener("click", function () {
      var canvas = document.createElement("canvas");
      canvas.width = video.videoWidth || 480;
      canvas.height = video.videoHeight || 640;
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(function (blob) {
        var dt = new DataTransfer();
        dt.items.add(new File([blob], "photo.jpg", { type: "image/jpeg" }));
        input.files = dt.files;
        checked = false;
        error.hidden = true;
        show(input.files[0]);
      }, "image/jpeg", 0.9);
    });
  }

  input.addEventListener("change", function () {
    checked = false;
    error.hidden = true;
    show(input.files[0]);
  });

  form.addEventListener("submit", function (e) {
    var file = input.files && input.files[0];
    if (checked || !file || !file.slice) return; // no photo: the server says so
    e.preventDefault();
    isJPEG(file).then(function (ok) {
      if (ok) {
        checked = true;
        form.submit();
      } else {
        error.hidden = false;
      }
    });
  });
})();
