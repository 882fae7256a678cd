// The shop's own sign-in: ?user=ID signs in (?user= signs out), remembered in this browser.
// The tracker reports the user set in data-user-id.
(function () {
  var given = new URLSearchParams(location.search).get("user");
  if (given !== null) localStorage.setItem("shop.user", given);
  var user = localStorage.getItem("shop.user");
  if (user) document.body.setAttribute("data-user-id", user);
  document.getElementById("who").textContent = user ? "signed in as " + user : "not signed in (add ?user=you)";
})();
