package io.clicklib.registry;

import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.enterprise.event.Observes;
import javax.inject.Singleton;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * Refuses, before any other handler of the HTTP port, the requests a web page can make.
 *
 * <p>The registry stores and serves schemas to whoever asks. A page in the user's browser can
 * reach 127.0.0.1, and with DNS rebinding its own host name can point there, so the same-origin
 * rule alone protects nothing; a no-cors POST (a "simple" request) needs no preflight, so turning
 * CORS off (-Dquarkus.http.cors=false) does not stop it being sent either. So every request is
 * refused with 403 when:
 *
 * <ul>
 *   <li>it has not exactly one Host header, or more than one Origin header;
 *   <li>its Host is not a loopback name or address (a rebound name is not), nor one of the names in
 *       the setting {@code clicklib.allowed-hosts} (comma-separated, e.g. a container's name);
 *   <li>its Origin is not this service itself ({@code http://} and the Host header);
 *   <li>its Sec-Fetch-Site, which browsers send with every request, is other than {@code none} or
 *       {@code same-origin} (a page's GET, image or form, carries no Origin, but this).
 * </ul>
 *
 * <p>It also drops every {@code Access-Control-*} header from the answers, so no browser hands an
 * answer to a page of another origin. The rules are those of clicklib/stack/web_guard.py, the
 * guard in front of Flink's REST API and the SQL Gateway; {@link #refusal} mirrors its
 * {@code refusal}.
 *
 * <p>The route is added to the application's Vert.x router when Quarkus fires its {@code Router}
 * event, with the lowest order there is: Quarkus mounts everything else the registry serves
 * (Undertow, and RESTEasy within it, as the default route at order 10000; its own filters at
 * minus their priority; the body handler at {@code Integer.MIN_VALUE + 1}) on the same router,
 * and routes of equal order run in the order they were added, which is after this one.
 */
@Singleton
public class WebPageGuard {
    private static final Logger LOG = Logger.getLogger(WebPageGuard.class);

    static final Set<String> LOOPBACK_NAMES =
            Set.of("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback");
    static final Pattern AUTHORITY =
            Pattern.compile("(?<host>[A-Za-z0-9.\\-]+|\\[[0-9A-Fa-f:.]+\\])(?::(?<port>[0-9]{1,5}))?");
    private static final Pattern IP_FUTURE = Pattern.compile("v[a-fA-F0-9]+\\..+", Pattern.DOTALL);

    @ConfigProperty(name = "clicklib.allowed-hosts")
    Optional<String> allowedHostsSetting;

    void install(@Observes Router router) {
        Set<String> allowed = allowedHosts(allowedHostsSetting.orElse(""));
        router.route().order(Integer.MIN_VALUE).handler(ctx -> guard(ctx, allowed));
        LOG.infof(
                "refusing requests of web pages of other sites; host names served besides loopback: %s",
                allowed.isEmpty() ? "none" : String.join(", ", allowed));
    }

    /** The names of {@code clicklib.allowed-hosts}, lower-case. */
    static Set<String> allowedHosts(String setting) {
        Set<String> names = new LinkedHashSet<>();
        for (String name : setting.split(",")) {
            if (!name.isBlank()) {
                names.add(name.strip().toLowerCase(Locale.ROOT));
            }
        }
        return Set.copyOf(names);
    }

    private static void guard(RoutingContext ctx, Set<String> allowed) {
        HttpServerRequest request = ctx.request();
        String reason = refusal(
                hostValues(request),
                request.headers().getAll(HttpHeaders.ORIGIN),
                request.getHeader("Sec-Fetch-Site"),
                allowed);
        if (!reason.isEmpty()) {
            String path = request.path() == null ? "" : request.path();
            LOG.infof("refused %s %s: %s", request.method(), path.substring(0, Math.min(path.length(), 200)), reason);
            refuse(ctx, reason);
            return;
        }
        ctx.addHeadersEndHandler(v -> dropCrossOriginHeaders(ctx.response().headers()));
        ctx.next();
    }

    /**
     * The values that name the host a request is for: its Host headers; over HTTP/2 (which
     * browsers speak over TLS only, never to this port) also its :authority, which Vert.x gives as
     * {@code host()} and leaves out of the headers.
     */
    static List<String> hostValues(HttpServerRequest request) {
        List<String> hosts = new ArrayList<>(request.headers().getAll(HttpHeaders.HOST));
        if (request.version() == HttpVersion.HTTP_2 && request.host() != null) {
            String authority = request.host();
            if (hosts.stream().noneMatch(authority::equalsIgnoreCase)) {
                hosts.add(0, authority);
            }
        }
        return hosts;
    }

    private static void refuse(RoutingContext ctx, String reason) {
        HttpServerRequest request = ctx.request();
        HttpServerResponse response = ctx.response();
        response.setStatusCode(403);
        response.headers().set(HttpHeaders.CONTENT_TYPE, "text/plain; charset=utf-8");
        if (request.version() == HttpVersion.HTTP_2) {
            // The body, if any, is read and dropped; the connection's other streams go on.
            request.resume();
        } else {
            // As web_guard.py does, and Quarkus for a body over its limit: what the client sent
            // after the headers is never read, and the connection ends with the answer.
            response.headers().set(HttpHeaders.CONNECTION, "close");
            response.endHandler(v -> request.connection().close());
        }
        response.end(reason + "\n");
    }

    static void dropCrossOriginHeaders(MultiMap headers) {
        for (String name : List.copyOf(headers.names())) {
            if (name.toLowerCase(Locale.ROOT).startsWith("access-control-")) {
                headers.remove(name);
            }
        }
    }

    /**
     * Why a request must not reach the registry, or "" when it may; web_guard.refusal with the
     * allowed host names added.
     *
     * @param hosts every value of the Host header
     * @param origins every value of the Origin header
     * @param fetchSite the Sec-Fetch-Site header, or null
     * @param allowedHosts host names (no port, lower-case) served besides the loopback ones
     */
    static String refusal(List<String> hosts, List<String> origins, String fetchSite, Set<String> allowedHosts) {
        if (hosts.size() != 1 || origins.size() > 1) {
            return "a request needs exactly one Host header and at most one Origin header";
        }
        String host = strip(hosts.get(0));
        Matcher authority = AUTHORITY.matcher(host);
        if (!authority.matches()
                || !(isLoopbackName(authority.group("host"))
                        || allowedHosts.contains(authority.group("host").toLowerCase(Locale.ROOT)))) {
            // A browser always sends Host; a DNS-rebinding page sends its own name there.
            return "the Host header " + repr(hosts.get(0))
                    + " does not name this machine; use http://127.0.0.1 or http://localhost";
        }
        if (!origins.isEmpty()) {
            String[] parts = schemeAndNetloc(origins.get(0));
            // Only the pages this service serves itself: a page of another port on this machine
            // is another origin, a notebook or a dev server included.
            if (parts == null
                    || !parts[0].equals("http")
                    || !parts[1].toLowerCase(Locale.ROOT).equals(host.toLowerCase(Locale.ROOT))) {
                return "requests from web pages of " + repr(origins.get(0))
                        + " are not served; only this service's own pages may call";
            }
        }
        if (fetchSite != null && !fetchSite.equals("same-origin") && !fetchSite.equals("none")) {
            // A page's GET (an image, a form, a no-cors fetch) carries no Origin, but this.
            return "requests a web page of another site makes (Sec-Fetch-Site: " + fetchSite + ") are not served";
        }
        return "";
    }

    /**
     * Whether a host name or address (no port) names this machine's loopback interface; no name
     * is looked up.
     */
    static boolean isLoopbackName(String host) {
        host = strip(host);
        int end = host.length();
        while (end > 0 && host.charAt(end - 1) == '.') {
            end--;
        }
        host = host.substring(0, end).toLowerCase(Locale.ROOT);
        if (host.startsWith("[")) {
            host = host.substring(1);
        }
        if (host.endsWith("]")) {
            host = host.substring(0, host.length() - 1);
        }
        if (LOOPBACK_NAMES.contains(host) || host.endsWith(".localhost")) {
            return true;
        }
        int[] ipv4 = ipv4(host);
        if (ipv4 != null) {
            return ipv4[0] == 127;
        }
        int[] ipv6 = ipv6(host);
        if (ipv6 == null) {
            return false;
        }
        for (int i = 0; i < 7; i++) {
            if (ipv6[i] != 0) {
                return false;
            }
        }
        return ipv6[7] == 1;
    }

    /** The four octets of a dotted-quad IPv4 address, parsed as Python's ipaddress does, or null. */
    static int[] ipv4(String text) {
        String[] parts = text.split("\\.", -1);
        if (parts.length != 4) {
            return null;
        }
        int[] octets = new int[4];
        for (int i = 0; i < 4; i++) {
            String part = parts[i];
            if (part.isEmpty() || part.length() > 3 || !part.chars().allMatch(c -> c >= '0' && c <= '9')) {
                return null;
            }
            if (part.length() > 1 && part.charAt(0) == '0') {
                return null;
            }
            octets[i] = Integer.parseInt(part);
            if (octets[i] > 255) {
                return null;
            }
        }
        return octets;
    }

    /** The eight 16-bit groups of an IPv6 address, parsed as Python's ipaddress does, or null. */
    static int[] ipv6(String text) {
        if (text.isEmpty() || text.contains("%") || text.contains("/")) {
            return null;
        }
        List<String> parts = new ArrayList<>(List.of(text.split(":", -1)));
        if (parts.size() < 3) {
            return null;
        }
        if (parts.get(parts.size() - 1).contains(".")) {
            int[] ipv4 = ipv4(parts.remove(parts.size() - 1));
            if (ipv4 == null) {
                return null;
            }
            parts.add(Integer.toHexString(ipv4[0] << 8 | ipv4[1]));
            parts.add(Integer.toHexString(ipv4[2] << 8 | ipv4[3]));
        }
        if (parts.size() > 9) {
            return null;
        }
        int skip = -1;
        for (int i = 1; i < parts.size() - 1; i++) {
            if (parts.get(i).isEmpty()) {
                if (skip >= 0) {
                    return null;
                }
                skip = i;
            }
        }
        int high;
        int low;
        if (skip >= 0) {
            high = skip;
            low = parts.size() - skip - 1;
            if (parts.get(0).isEmpty() && --high != 0) {
                return null;
            }
            if (parts.get(parts.size() - 1).isEmpty() && --low != 0) {
                return null;
            }
            if (8 - (high + low) < 1) {
                return null;
            }
        } else {
            if (parts.size() != 8 || parts.get(0).isEmpty() || parts.get(7).isEmpty()) {
                return null;
            }
            high = 8;
            low = 0;
        }
        int[] groups = new int[8];
        for (int i = 0; i < high; i++) {
            groups[i] = hextet(parts.get(i));
        }
        for (int i = 0; i < low; i++) {
            groups[8 - low + i] = hextet(parts.get(parts.size() - low + i));
        }
        for (int group : groups) {
            if (group < 0) {
                return null;
            }
        }
        return groups;
    }

    private static int hextet(String text) {
        if (text.isEmpty() || text.length() > 4) {
            return -1;
        }
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
                return -1;
            }
        }
        return Integer.parseInt(text, 16);
    }

    /**
     * The scheme (lower-case) and the authority of a URL, split as Python's urllib.parse.urlsplit
     * does; null where urlsplit raises.
     */
    static String[] schemeAndNetloc(String url) {
        int start = 0;
        while (start < url.length() && url.charAt(start) <= ' ') {
            start++;
        }
        url = url.substring(start).replace("\t", "").replace("\r", "").replace("\n", "");
        String scheme = "";
        int colon = url.indexOf(':');
        if (colon > 0 && isAsciiLetter(url.charAt(0))
                && url.substring(0, colon).chars().allMatch(c -> isAsciiLetter((char) c)
                        || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')) {
            scheme = url.substring(0, colon).toLowerCase(Locale.ROOT);
            url = url.substring(colon + 1);
        }
        String netloc = "";
        if (url.startsWith("//")) {
            int end = url.length();
            for (char delimiter : new char[] {'/', '?', '#'}) {
                int at = url.indexOf(delimiter, 2);
                if (at >= 0) {
                    end = Math.min(end, at);
                }
            }
            netloc = url.substring(2, end);
            if (netloc.contains("[") != netloc.contains("]")) {
                return null;
            }
            if (netloc.contains("[")) {
                String bracketed = netloc.substring(netloc.indexOf('[') + 1);
                bracketed = bracketed.substring(0, Math.max(bracketed.indexOf(']'), 0));
                if (bracketed.startsWith("v")
                        ? !IP_FUTURE.matcher(bracketed).matches()
                        : ipv4(bracketed) != null || ipv6(bracketed.replaceFirst("%.*", "")) == null) {
                    return null;
                }
            }
        }
        return new String[] {scheme, netloc};
    }

    private static boolean isAsciiLetter(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }

    /** The text without the leading and trailing characters Python's str.strip() removes. */
    static String strip(String text) {
        int start = 0;
        int end = text.length();
        while (start < end && isPythonSpace(text.charAt(start))) {
            start++;
        }
        while (end > start && isPythonSpace(text.charAt(end - 1))) {
            end--;
        }
        return text.substring(start, end);
    }

    private static boolean isPythonSpace(char c) {
        return (c >= '\t' && c <= '\r') || (c >= '\u001c' && c <= ' ') || c == '\u0085' || c == '\u00a0'
                || Character.isWhitespace(c) || Character.isSpaceChar(c);
    }

    /** The text quoted as Python's repr() quotes a string, as web_guard.py's messages show it. */
    static String repr(String text) {
        char quote = text.indexOf('\'') >= 0 && text.indexOf('"') < 0 ? '"' : '\'';
        StringBuilder out = new StringBuilder().append(quote);
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '\\' || c == quote) {
                out.append('\\').append(c);
            } else if (c == '\t') {
                out.append("\\t");
            } else if (c == '\n') {
                out.append("\\n");
            } else if (c == '\r') {
                out.append("\\r");
            } else if (c < ' ' || (c >= 0x7f && c <= 0xa0) || c == 0xad) {
                out.append(String.format("\\x%02x", (int) c));
            } else if (c > 0xff && !isPrintable(c)) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append(quote).toString();
    }

    private static boolean isPrintable(char c) {
        switch (Character.getType(c)) {
            case Character.CONTROL:
            case Character.FORMAT:
            case Character.SURROGATE:
            case Character.PRIVATE_USE:
            case Character.UNASSIGNED:
            case Character.LINE_SEPARATOR:
            case Character.PARAGRAPH_SEPARATOR:
            case Character.SPACE_SEPARATOR:
                return false;
            default:
                return true;
        }
    }
}
