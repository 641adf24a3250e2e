// Applies the saved theme before the page is drawn (no flash).
(function () {
  try {
    var t = localStorage.getItem("shmgr.theme");
    if (t === "light" || t === "dark") document.documentElement.setAttribute("data-theme", t);
  } catch (e) { /* storage disabled: follow the system */ }
})();
