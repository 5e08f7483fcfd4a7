// Applied before the first paint (a classic script in <head>, no module) so a stored theme does
// not flash. "?theme=dark|light" in the URL forces a theme for this load without storing it.
(function () {
  var theme = null;
  try {
    theme = new URLSearchParams(location.search).get("theme");
    if (theme !== "dark" && theme !== "light") theme = localStorage.getItem("containerctl-theme");
  } catch (e) { /* storage may be disabled */ }
  if (theme === "dark" || theme === "light") document.documentElement.setAttribute("data-theme", theme);
})();
