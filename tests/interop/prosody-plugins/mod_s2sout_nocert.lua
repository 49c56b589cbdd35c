-- mod_s2sout_nocert: outgoing s2s STARTTLS without a client certificate.
--
-- For the fedgate interop tests (t_legacy.sh, "a TLS peer without a client
-- certificate"): Prosody 0.12 presents its own certificate on outgoing s2s
-- TLS, as many servers do; older ones present none. This module gives each
-- outgoing s2s session of the host a client TLS context that holds no
-- certificate, before mod_tls picks its own. Test code only.
local ssl = require "ssl";

local ctx, err = ssl.newcontext({
	mode = "client";
	protocol = "any";
	verify = "none";
	options = { "no_sslv2"; "no_sslv3"; "no_compression" };
});
if not ctx then
	module:log("error", "cannot make a client TLS context: %s", err);
end

module:hook("s2sout-created", function (event)
	if ctx then
		event.session.ssl_ctx = ctx;
		event.session.log("info", "s2sout TLS without a client certificate");
	end
end, 10);
