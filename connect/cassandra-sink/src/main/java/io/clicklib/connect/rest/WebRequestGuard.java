package io.clicklib.connect.rest;

import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.container.ContainerRequestFilter;
import jakarta.ws.rs.container.ContainerResponseContext;
import jakarta.ws.rs.container.ContainerResponseFilter;
import jakarta.ws.rs.container.PreMatching;
import jakarta.ws.rs.core.Response;
import java.io.IOException;
import java.io.InputStream;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.connect.rest.ConnectRestExtension;
import org.apache.kafka.connect.rest.ConnectRestExtensionContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Connect REST extension that refuses the requests a web page can make.
 *
 * <p>Connect's REST API creates connectors, which run code, and it has no login by default. A
 * page in the user's browser can reach 127.0.0.1, and through DNS rebinding its own host name can
 * point there and be sent as Host, so listening on loopback protects nothing by itself; and a
 * {@code no-cors} POST needs no preflight, so the absence of CORS headers does not stop it being
 * sent. The rules are those of clicklib's Python guard ({@code clicklib/stack/web_guard.py},
 * function {@code refusal}): one Host that names this machine, no Origin but this service's own,
 * no {@code Sec-Fetch-Site} of another site. The worker property {@value #ALLOWED_HOSTS_CONFIG}
 * names further host names that Host may carry, such as a worker's advertised name, which other
 * workers send when they forward a request to it.
 *
 * <p>It is enabled with {@code rest.extension.classes=io.clicklib.connect.rest.WebRequestGuard}.
 */
public class WebRequestGuard implements ConnectRestExtension {

    /** Comma-separated host names, besides the loopback ones, that the Host header may name. */
    public static final String ALLOWED_HOSTS_CONFIG = "clicklib.rest.allowed.hosts";

    // Pre-matching filters run before all others, in ascending priority: this one comes ahead of
    // any of authentication (Priorities.AUTHENTICATION = 1000) or of the default (USER = 5000).
    static final int PRIORITY = 100;

    private static final Logger log = LoggerFactory.getLogger(WebRequestGuard.class);

    private static final Set<String> LOOPBACK_NAMES =
            Set.of("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback");
    private static final Pattern AUTHORITY =
            Pattern.compile("(?<host>[A-Za-z0-9.\\-]+|\\[[0-9A-Fa-f:.]+\\])(?::(?<port>[0-9]{1,5}))?");
    // urlsplit's check of an IPvFuture host; it has removed every newline first, so "." is any character.
    private static final Pattern IPV_FUTURE = Pattern.compile("v[a-fA-F0-9]+\\..+", Pattern.DOTALL);
    private static final String SCHEME_CHARS =
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.";

    private volatile Set<String> allowedHosts = Set.of();

    @Override
    public void configure(Map<String, ?> configs) {
        Object value = configs.get(ALLOWED_HOSTS_CONFIG);
        List<String> entries = new ArrayList<>();
        if (value instanceof List<?> list) {
            list.forEach(entry -> entries.add(String.valueOf(entry)));
        } else if (value != null) {
            entries.addAll(List.of(String.valueOf(value).split(",", -1)));
        }
        Set<String> hosts = new HashSet<>();
        for (String entry : entries) {
            String host = normalizeHost(entry);
            if (!host.isEmpty()) {
                hosts.add(host);
            }
        }
        allowedHosts = Set.copyOf(hosts);
    }

    @Override
    public void register(ConnectRestExtensionContext restPluginContext) {
        restPluginContext.configurable().register(new RequestGuard(allowedHosts), PRIORITY);
        restPluginContext.configurable().register(new CrossOriginHeaderRemover(), PRIORITY);
        // After the Host and Origin check: a web page's body is never read.
        restPluginContext.configurable().register(new SecretReferenceGuard(), PRIORITY + 1);
    }

    @Override
    public void close() {}

    @Override
    public String version() {
        Properties props = new Properties();
        try (InputStream in = WebRequestGuard.class.getResourceAsStream("version.properties")) {
            if (in != null) {
                props.load(in);
            }
        } catch (IOException e) {
            // An unreadable resource only costs us the version string.
        }
        return props.getProperty("version", "unknown");
    }

    /**
     * Why a request must not be served, or "" when it may.
     *
     * @param hosts every value of the Host header
     * @param origins every value of the Origin header
     * @param fetchSite the (first) Sec-Fetch-Site header, or null when there is none
     * @param allowedHosts host names besides the loopback ones that Host may name (any case, no port)
     */
    static String refusal(List<String> hosts, List<String> origins, String fetchSite, Set<String> allowedHosts) {
        if (hosts.size() != 1 || origins.size() > 1) {
            return "a request needs exactly one Host header and at most one Origin header";
        }
        String host = hosts.get(0);
        Matcher authority = AUTHORITY.matcher(pyStrip(host));
        if (!authority.matches() || !(isLoopbackName(authority.group("host"))
                || isAllowed(authority.group("host"), allowedHosts))) {
            // A browser always sends Host; a DNS-rebinding page sends its own name there.
            return "the Host header " + pyRepr(host)
                    + " does not name this machine; use http://127.0.0.1 or http://localhost";
        }
        if (!origins.isEmpty()) {
            String origin = origins.get(0);
            // Only the pages this service serves itself: a page of another port on this machine
            // is another origin, a notebook or a dev server included.
            String[] parts = schemeAndNetloc(origin);
            if (parts == null || !parts[0].equals("http")
                    || !parts[1].toLowerCase(Locale.ROOT).equals(pyStrip(host).toLowerCase(Locale.ROOT))) {
                return "requests from web pages of " + pyRepr(origin)
                        + " are not served; only this service's own pages may call";
            }
        }
        if (fetchSite != null && !fetchSite.equals("same-origin") && !fetchSite.equals("none")) {
            // A page's GET (an image, a form, a no-cors fetch) carries no Origin, but this.
            return "requests a web page of another site makes (Sec-Fetch-Site: " + fetchSite + ") are not served";
        }
        return "";
    }

    /** Whether a host name or address (no port) names this machine's loopback interface. */
    static boolean isLoopbackName(String host) {
        String name = normalizeHost(host);
        if (LOOPBACK_NAMES.contains(name) || name.endsWith(".localhost")) {
            return true;
        }
        byte[] address = ipAddress(name);
        if (address == null) {
            return false;
        }
        if (address.length == 4) {
            return address[0] == 127;
        }
        // Only ::1, as Python 3.11's ipaddress has it (an IPv4-mapped ::ffff:127.x is not).
        for (int i = 0; i < 15; i++) {
            if (address[i] != 0) {
                return false;
            }
        }
        return address[15] == 1;
    }

    private static boolean isAllowed(String host, Set<String> allowedHosts) {
        String name = normalizeHost(host);
        if (name.isEmpty()) {
            return false;
        }
        for (String allowed : allowedHosts) {
            if (name.equals(normalizeHost(allowed))) {
                return true;
            }
        }
        return false;
    }

    /** A host as web_guard.is_loopback_name compares it: trimmed, no trailing dots, lower case, no brackets. */
    static String normalizeHost(String host) {
        String name = pyStrip(host);
        int end = name.length();
        while (end > 0 && name.charAt(end - 1) == '.') {
            end--;
        }
        name = name.substring(0, end).toLowerCase(Locale.ROOT);
        if (name.startsWith("[")) {
            name = name.substring(1);
        }
        if (name.endsWith("]")) {
            name = name.substring(0, name.length() - 1);
        }
        return name;
    }

    /**
     * The address that Python's {@code ipaddress.ip_address} makes of a text (4 or 16 bytes), or
     * null when it is no address. Only literals are parsed; no name is ever looked up.
     */
    static byte[] ipAddress(String text) {
        byte[] v4 = ipv4Address(text);
        return v4 != null ? v4 : ipv6Address(text);
    }

    private static byte[] ipv4Address(String text) {
        if (text.isEmpty() || text.indexOf('/') >= 0) {
            return null;
        }
        String[] octets = text.split("\\.", -1);
        if (octets.length != 4) {
            return null;
        }
        byte[] address = new byte[4];
        for (int i = 0; i < 4; i++) {
            String octet = octets[i];
            if (octet.isEmpty() || octet.length() > 3 || !octet.chars().allMatch(c -> c >= '0' && c <= '9')) {
                return null;
            }
            if (!octet.equals("0") && octet.charAt(0) == '0') {
                return null;
            }
            int value = Integer.parseInt(octet);
            if (value > 255) {
                return null;
            }
            address[i] = (byte) value;
        }
        return address;
    }

    private static byte[] ipv6Address(String text) {
        if (text.indexOf('/') >= 0) {
            return null;
        }
        int percent = text.indexOf('%');
        if (percent >= 0) {
            String scope = text.substring(percent + 1);
            if (scope.isEmpty() || scope.indexOf('%') >= 0) {
                return null;
            }
            text = text.substring(0, percent);
        }
        if (text.isEmpty()) {
            return null;
        }
        List<String> parts = new ArrayList<>(List.of(text.split(":", -1)));
        if (parts.size() < 3) {
            return null;
        }
        if (parts.get(parts.size() - 1).indexOf('.') >= 0) {
            byte[] v4 = ipv4Address(parts.remove(parts.size() - 1));
            if (v4 == null) {
                return null;
            }
            parts.add(Integer.toHexString(((v4[0] & 0xff) << 8) | (v4[1] & 0xff)));
            parts.add(Integer.toHexString(((v4[2] & 0xff) << 8) | (v4[3] & 0xff)));
        }
        if (parts.size() > 9) {
            return null;
        }
        int skipIndex = -1;
        for (int i = 1; i < parts.size() - 1; i++) {
            if (parts.get(i).isEmpty()) {
                if (skipIndex >= 0) {
                    return null;
                }
                skipIndex = i;
            }
        }
        int partsHi;
        int partsLo;
        int partsSkipped;
        if (skipIndex >= 0) {
            partsHi = skipIndex;
            partsLo = parts.size() - skipIndex - 1;
            if (parts.get(0).isEmpty() && --partsHi != 0) {
                return null;
            }
            if (parts.get(parts.size() - 1).isEmpty() && --partsLo != 0) {
                return null;
            }
            partsSkipped = 8 - (partsHi + partsLo);
            if (partsSkipped < 1) {
                return null;
            }
        } else {
            if (parts.size() != 8 || parts.get(0).isEmpty() || parts.get(7).isEmpty()) {
                return null;
            }
            partsHi = 8;
            partsLo = 0;
            partsSkipped = 0;
        }
        int[] hextets = new int[8];
        int at = 0;
        for (int i = 0; i < partsHi; i++) {
            int hextet = hextet(parts.get(i));
            if (hextet < 0) {
                return null;
            }
            hextets[at++] = hextet;
        }
        at += partsSkipped;
        for (int i = parts.size() - partsLo; i < parts.size(); i++) {
            int hextet = hextet(parts.get(i));
            if (hextet < 0) {
                return null;
            }
            hextets[at++] = hextet;
        }
        byte[] address = new byte[16];
        for (int i = 0; i < 8; i++) {
            address[2 * i] = (byte) (hextets[i] >> 8);
            address[2 * i + 1] = (byte) hextets[i];
        }
        return address;
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
     * The scheme (lower case) and netloc of a URL as Python's {@code urllib.parse.urlsplit} splits
     * it, or null where urlsplit raises ValueError (the Python guard then serves nothing either).
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
                && url.substring(0, colon).chars().allMatch(c -> SCHEME_CHARS.indexOf(c) >= 0)) {
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
            boolean open = netloc.indexOf('[') >= 0;
            boolean close = netloc.indexOf(']') >= 0;
            if (open != close) {
                return null;
            }
            if (open) {
                String bracketed = netloc.substring(netloc.indexOf('[') + 1);
                int closing = bracketed.indexOf(']');
                if (closing >= 0) {
                    bracketed = bracketed.substring(0, closing);
                }
                if (bracketed.startsWith("v")) {
                    if (!IPV_FUTURE.matcher(bracketed).matches()) {
                        return null;
                    }
                } else {
                    byte[] address = ipAddress(bracketed);
                    if (address == null || address.length == 4) {
                        return null;
                    }
                }
            }
        }
        if (!netloc.chars().allMatch(c -> c < 128)) {
            // urlsplit refuses a netloc whose NFKC form hides URL delimiters (like U+2100, a/c).
            String bare = netloc.replace("@", "").replace(":", "").replace("#", "").replace("?", "");
            String normalized = Normalizer.normalize(bare, Normalizer.Form.NFKC);
            if (!bare.equals(normalized) && normalized.chars().anyMatch(c -> "/?#@:".indexOf(c) >= 0)) {
                return null;
            }
        }
        return new String[] {scheme, netloc};
    }

    private static boolean isAsciiLetter(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }

    /** Python's str.strip(): whitespace off both ends. */
    private static String pyStrip(String text) {
        int start = 0;
        int end = text.length();
        while (start < end && isPySpace(text.charAt(start))) {
            start++;
        }
        while (end > start && isPySpace(text.charAt(end - 1))) {
            end--;
        }
        return text.substring(start, end);
    }

    private static boolean isPySpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
    }

    /** Python's repr() of a str, so that the messages read as the Python guard's do. */
    static String pyRepr(String text) {
        char quote = text.indexOf('\'') >= 0 && text.indexOf('"') < 0 ? '"' : '\'';
        StringBuilder out = new StringBuilder().append(quote);
        text.codePoints().forEach(c -> {
            if (c == quote || c == '\\') {
                out.append('\\').appendCodePoint(c);
            } else if (c == '\t') {
                out.append("\\t");
            } else if (c == '\n') {
                out.append("\\n");
            } else if (c == '\r') {
                out.append("\\r");
            } else if (c < ' ' || c == 0x7f) {
                out.append(String.format("\\x%02x", c));
            } else if (c < 0x7f || isPrintable(c)) {
                out.appendCodePoint(c);
            } else if (c <= 0xff) {
                out.append(String.format("\\x%02x", c));
            } else if (c <= 0xffff) {
                out.append(String.format("\\u%04x", c));
            } else {
                out.append(String.format("\\U%08x", c));
            }
        });
        return out.append(quote).toString();
    }

    private static boolean isPrintable(int c) {
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

    /** Every value of a request header, whatever the case of its name. */
    private static List<String> headerValues(ContainerRequestContext request, String name) {
        List<String> values = new ArrayList<>();
        request.getHeaders().forEach((key, list) -> {
            if (key != null && key.equalsIgnoreCase(name) && list != null) {
                values.addAll(list);
            }
        });
        return values;
    }

    /** Refuses, before any resource is matched, the requests {@link #refusal} refuses. */
    @PreMatching
    public static final class RequestGuard implements ContainerRequestFilter {

        private final Set<String> allowedHosts;

        public RequestGuard(Set<String> allowedHosts) {
            this.allowedHosts = allowedHosts;
        }

        @Override
        public void filter(ContainerRequestContext request) {
            List<String> fetchSites = headerValues(request, "Sec-Fetch-Site");
            String reason = refusal(headerValues(request, "Host"), headerValues(request, "Origin"),
                    fetchSites.isEmpty() ? null : fetchSites.get(0), allowedHosts);
            if (reason.isEmpty()) {
                return;
            }
            String path = request.getUriInfo().getRequestUri().getRawPath();
            if (path != null && path.length() > 200) {
                path = path.substring(0, 200);
            }
            log.info("refused {} {}: {}", request.getMethod(), path, reason);
            request.abortWith(Response.status(Response.Status.FORBIDDEN)
                    .type("text/plain; charset=utf-8")
                    .entity(reason + "\n")
                    .build());
        }
    }

    /** Drops Access-Control-* headers from every answer, so no browser hands one to another origin's page. */
    public static final class CrossOriginHeaderRemover implements ContainerResponseFilter {

        @Override
        public void filter(ContainerRequestContext request, ContainerResponseContext response) {
            List<String> names = new ArrayList<>();
            for (String name : response.getHeaders().keySet()) {
                if (name != null && name.toLowerCase(Locale.ROOT).startsWith("access-control-")) {
                    names.add(name);
                }
            }
            names.forEach(response.getHeaders()::remove);
        }
    }
}
