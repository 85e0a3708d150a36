/* 荣军助手工作台: the queue and an open transcript update without a page reload.
 * Long polling with XMLHttpRequest (ES5: runs on a station's old browser too); the
 * server answers when something changed or after about 25 seconds. Without this
 * script the pages still work: reload to see news. */
(function () {
  "use strict";

  function poll(url, onData) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", url(), true);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.timeout = 60000;
    xhr.onload = function () {
      var type = xhr.getResponseHeader("Content-Type") || "";
      if (xhr.status === 200 && type.indexOf("application/json") === 0) {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
        if (data) { onData(data); }
        setTimeout(again, 100);
      } else if (xhr.status === 200) {
        // Signed out or the session expired: the sign-in page came back instead.
        showOffline("登录已超时，请刷新页面重新登录。");
      } else {
        setTimeout(again, 5000);
      }
    };
    xhr.onerror = xhr.ontimeout = function () { setTimeout(again, 5000); };
    xhr.send();
    function again() { poll(url, onData); }
  }

  function showOffline(text) {
    var box = document.createElement("div");
    box.className = "message";
    box.appendChild(document.createTextNode(text));
    var main = document.querySelector(".main");
    if (main) { main.insertBefore(box, main.firstChild); }
  }

  var queue = document.getElementById("queue-rows");
  if (queue) {
    poll(function () {
      return queue.getAttribute("data-live") + "?sig=" + encodeURIComponent(queue.getAttribute("data-sig"));
    }, function (data) {
      if (data.sig !== queue.getAttribute("data-sig")) {
        queue.innerHTML = data.html;
        queue.setAttribute("data-sig", data.sig);
      }
    });
  }

  var transcript = document.getElementById("transcript");
  if (transcript) {
    transcript.scrollTop = transcript.scrollHeight;
    poll(function () {
      return transcript.getAttribute("data-live") + "?after=" + transcript.getAttribute("data-after") +
        "&sig=" + encodeURIComponent(transcript.getAttribute("data-sig")) +
        "&notes=" + transcript.getAttribute("data-notes");
    }, function (data) {
      if (data.html) {
        var atBottom = transcript.scrollTop + transcript.clientHeight >= transcript.scrollHeight - 40;
        transcript.insertAdjacentHTML("beforeend", data.html);
        if (atBottom) { transcript.scrollTop = transcript.scrollHeight; }
      }
      transcript.setAttribute("data-after", data.after);
      if (data.notes_html !== null && data.notes_html !== undefined) {
        var notes = document.getElementById("notes");
        if (notes) { notes.innerHTML = data.notes_html; }
        transcript.setAttribute("data-notes", data.notes);
      }
      if (data.stale) {
        var stale = document.getElementById("stale");
        if (stale) { stale.style.display = "block"; }
        transcript.setAttribute("data-sig", "stale");  // told once; the forms wait for a reload
      }
    });
  }
}());
