/*
 * Inline progress from job logs: the stage a job is in, how far it has got
 * and its last log line, for a job card that is polled every few seconds.
 * Fetching the logs, storing the result and writing JSON are left to the
 * callers.
 *
 * Lines split on '\n'. Inside a line, a '\r' is a carriage-return redraw
 * (tqdm draws its bars that way), so only the text after the last '\r'
 * counts, and trailing '\r' bytes (CRLF) are ignored. ANSI escapes (CSI, and
 * OSC/DCS-style strings) and control bytes other than tab are invisible, and
 * a tab reads as a space. The matchers walk the raw bytes through a cursor
 * that skips what is invisible, so they see exactly the text that last_log
 * shows, without a copy and whatever the line length.
 *
 * The scan reads lines from the end and stops as soon as stage, progress and
 * last_log are all known, so a long log of a running job costs little. Each
 * byte is visited a bounded number of times, so the worst case is linear.
 *
 * Rules where one line matches several patterns:
 *   - Stage: Preprocessing > Saving checkpoint > Validation > Warmup >
 *     Training. A specific word beats the generic step/epoch patterns
 *     ("Warmup steps: 100", "Saving checkpoint at step 400", "epoch 3/10
 *     validation loss"), and "Loading checkpoint shards" is Preprocessing.
 *     Keywords must start a word, so "Uploading" is not "loading".
 *     Training comes from words starting with "step" or "epoch" and from
 *     tqdm rates ("12.4it/s", "?it/s", "2.5s/it").
 *   - Progress: step X/Y > epoch X/Y > tqdm " X/Y [" > "NN%". A named
 *     counter describes the whole run while a bar often counts one epoch's
 *     batches, and step is finer than epoch. Within one rank the first
 *     match on the line wins, because tqdm puts the bar before its postfix
 *     ("50%|...| acc=95%"). A shape with Y = 0 does not count.
 */
#include "jobwire/progress.h"

#include <math.h>
#include <string.h>

#define ASCII_ESC 0x1b
#define ASCII_BEL 0x07
#define ASCII_DEL 0x7f

enum stage {
    STAGE_NONE,
    STAGE_TRAINING,
    STAGE_WARMUP,
    STAGE_VALIDATION,
    STAGE_CHECKPOINT,
    STAGE_PREPROCESSING,
};

/* Higher ranks are more trusted when one line contains several shapes. */
enum rank {
    RANK_NONE,
    RANK_PERCENT,
    RANK_BAR,
    RANK_EPOCH,
    RANK_STEP,
};

static const char *const stage_names[] = {
    [STAGE_NONE] = NULL,
    [STAGE_TRAINING] = "Training",
    [STAGE_WARMUP] = "Warmup",
    [STAGE_VALIDATION] = "Validation",
    [STAGE_CHECKPOINT] = "Saving checkpoint",
    [STAGE_PREPROCESSING] = "Preprocessing",
};

/* Lowercase words that name a stage when they start a word. */
static const struct {
    const char *word;
    enum stage stage;
} stage_words[] = {
    {"preprocess", STAGE_PREPROCESSING},
    {"loading", STAGE_PREPROCESSING},
    {"checkpoint", STAGE_CHECKPOINT},
    {"validat", STAGE_VALIDATION},
    {"warmup", STAGE_WARMUP},
    {"warm-up", STAGE_WARMUP},
    {"warm up", STAGE_WARMUP},
    {"warming up", STAGE_WARMUP},
    {"step", STAGE_TRAINING},
    {"epoch", STAGE_TRAINING},
};

/* The visible part of one line: bytes [begin, end) of the logs. */
typedef struct line {
    const unsigned char *bytes;
    size_t begin;
    size_t end;
} line_t;

/* What one line contributes. */
typedef struct line_scan {
    enum stage stage;
    enum rank rank;
    double progress;
    int has_text; /* a visible byte other than a space */
} line_scan_t;

/*
 * A non-negative integer of any length as mantissa * 10^exponent. The
 * mantissa keeps the first 15 significant digits, which a double represents
 * exactly, so "1500/5000" is exact and a 400-digit number cannot overflow.
 */
typedef struct big_uint {
    double mantissa;
    int exponent;
} big_uint_t;

#define MANTISSA_DIGITS 15
#define EXPONENT_CAP 1000000

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int to_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Skips an OSC, DCS, SOS, PM or APC string: it ends with BEL or ESC '\'. */
static size_t skip_escape_string(const line_t *ln, size_t i)
{
    while (i < ln->end) {
        if (ln->bytes[i] == ASCII_BEL)
            return i + 1;
        if (ln->bytes[i] == ASCII_ESC && i + 1 < ln->end && ln->bytes[i + 1] == '\\')
            return i + 2;
        i++;
    }
    return ln->end;
}

/*
 * Skips the escape sequence at i (ln->bytes[i] is ESC) and returns the index
 * after it. A malformed sequence ends at the first byte that does not fit,
 * and that byte stays visible.
 */
static size_t skip_escape(const line_t *ln, size_t i)
{
    i++;
    if (i >= ln->end)
        return i;

    unsigned char kind = ln->bytes[i];
    if (kind == ']' || kind == 'P' || kind == 'X' || kind == '^' || kind == '_')
        return skip_escape_string(ln, i + 1);

    /* CSI: parameter and intermediate bytes 0x20-0x3f, then a final byte. */
    if (kind == '[') {
        i++;
        while (i < ln->end && ln->bytes[i] >= 0x20 && ln->bytes[i] <= 0x3f)
            i++;
        if (i < ln->end && ln->bytes[i] >= 0x40 && ln->bytes[i] <= 0x7e)
            i++;
        return i;
    }

    /* Other escapes (ESC 7, ESC ( B): intermediates 0x20-0x2f, then a final byte. */
    while (i < ln->end && ln->bytes[i] >= 0x20 && ln->bytes[i] <= 0x2f)
        i++;
    if (i < ln->end && ln->bytes[i] >= 0x30 && ln->bytes[i] <= 0x7e)
        i++;
    return i;
}

/* Returns the index of the first visible byte at or after i, or ln->end. */
static size_t visible_from(const line_t *ln, size_t i)
{
    while (i < ln->end) {
        unsigned char c = ln->bytes[i];

        if (c == ASCII_ESC)
            i = skip_escape(ln, i);
        else if ((c < 0x20 && c != '\t') || c == ASCII_DEL)
            i++;
        else
            return i;
    }
    return ln->end;
}

static size_t next_visible(const line_t *ln, size_t i)
{
    return visible_from(ln, i + 1);
}

/* Returns the visible byte at i (a tab reads as a space), or -1 at the end. */
static int peek(const line_t *ln, size_t i)
{
    if (i >= ln->end)
        return -1;
    return ln->bytes[i] == '\t' ? ' ' : ln->bytes[i];
}

/* Matches a lowercase word at i, ignoring case. On success *after is the index past it. */
static int match_word(const line_t *ln, size_t i, const char *word, size_t *after)
{
    for (; *word != '\0'; word++) {
        if (to_lower(peek(ln, i)) != *word)
            return 0;
        i = next_visible(ln, i);
    }
    *after = i;
    return 1;
}

static size_t skip_any_of(const line_t *ln, size_t i, const char *set)
{
    int c = peek(ln, i);

    while (c > 0 && strchr(set, c) != NULL) {
        i = next_visible(ln, i);
        c = peek(ln, i);
    }
    return i;
}

/* Parses the digits at i into *num and returns the index after them. */
static size_t parse_uint(const line_t *ln, size_t i, big_uint_t *num)
{
    int digits = 0;

    num->mantissa = 0;
    num->exponent = 0;
    while (is_digit(peek(ln, i))) {
        /* Leading zeros add no significant digit; digits past the 15th only scale. */
        if (digits < MANTISSA_DIGITS) {
            num->mantissa = num->mantissa * 10 + (peek(ln, i) - '0');
            digits += num->mantissa > 0;
        } else if (num->exponent < EXPONENT_CAP) {
            num->exponent++;
        }
        i = next_visible(ln, i);
    }
    return i;
}

/* Returns 100 * x / y capped to 0-100, or -1 when y is 0. */
static double ratio_percent(big_uint_t x, big_uint_t y)
{
    if (y.mantissa == 0)
        return -1;
    if (x.mantissa == 0)
        return 0;

    /*
     * Both mantissas lie in [1, 1e15), so a scale gap beyond 20 decides the
     * result alone: the ratio is then above 1e5 (capped) or below 1e-5 (rounds
     * to 0.0). Inside the gap pow() stays far from overflow.
     */
    int scale = x.exponent - y.exponent;
    if (scale > 20)
        return 100;
    if (scale < -20)
        return 0;

    double percent = 100 * (x.mantissa / y.mantissa) * pow(10, scale);
    return percent > 100 ? 100 : percent;
}

/* Parses "X/Y", "X / Y" or "X of Y" at the digit at i into a percentage, or -1. */
static double parse_fraction(const line_t *ln, size_t i)
{
    big_uint_t x, y;

    i = parse_uint(ln, i, &x);

    size_t after_spaces = skip_any_of(ln, i, " ");
    if (peek(ln, after_spaces) == '/') {
        i = skip_any_of(ln, next_visible(ln, after_spaces), " ");
    } else if (after_spaces != i && match_word(ln, after_spaces, "of", &i) && peek(ln, i) == ' ') {
        i = skip_any_of(ln, i, " ");
    } else {
        return -1;
    }

    if (!is_digit(peek(ln, i)))
        return -1;
    parse_uint(ln, i, &y);
    return ratio_percent(x, y);
}

/*
 * Matches a named counter at i, which starts a word: the word, an optional
 * plural 's', separators such as ": ", "=", "[" or "#", then a fraction
 * ("step 5/10", "steps: 5/10", "Step 5 of 10", "Epoch [3/10]").
 */
static double parse_counter(const line_t *ln, size_t i, const char *word)
{
    if (!match_word(ln, i, word, &i))
        return -1;
    if (to_lower(peek(ln, i)) == 's')
        i = next_visible(ln, i);

    i = skip_any_of(ln, i, " :=[(#");
    if (!is_digit(peek(ln, i)))
        return -1;
    return parse_fraction(ln, i);
}

/* Parses tqdm's " X/Y [" at the digit at i (after a space) into a percentage, or -1. */
static double parse_bar(const line_t *ln, size_t i)
{
    big_uint_t x, y;

    i = parse_uint(ln, i, &x);
    if (peek(ln, i) != '/')
        return -1;

    i = next_visible(ln, i);
    if (!is_digit(peek(ln, i)))
        return -1;
    i = parse_uint(ln, i, &y);

    size_t after_spaces = skip_any_of(ln, i, " ");
    if (after_spaces == i || peek(ln, after_spaces) != '[')
        return -1;
    return ratio_percent(x, y);
}

/*
 * Parses "45%" or "45.5%" at the digit at i, which starts a number, capped to
 * 100, or -1. NOTE: any percentage counts, so "GPU memory 85%" alone on the
 * latest line with a shape sets progress to 85.
 */
static double parse_percent(const line_t *ln, size_t i)
{
    big_uint_t whole;
    double fraction = 0;
    double scale = 0.1;

    i = parse_uint(ln, i, &whole);
    if (peek(ln, i) == '.') {
        i = next_visible(ln, i);
        if (!is_digit(peek(ln, i)))
            return -1;
        for (int digits = 0; is_digit(peek(ln, i)); digits++) {
            /* Digits past the sixth cannot change a value rounded to 0.1. */
            if (digits < 6) {
                fraction += scale * (peek(ln, i) - '0');
                scale /= 10;
            }
            i = next_visible(ln, i);
        }
    }

    if (peek(ln, i) != '%')
        return -1;
    if (whole.exponent > 0)
        return 100;

    double percent = whole.mantissa + fraction;
    return percent > 100 ? 100 : percent;
}

/* Matches a tqdm rate at i: "12.4it/s" or "?it/s", or "2.5s/it" for slow loops. */
static int match_rate(const line_t *ln, size_t i, int prev)
{
    size_t after;
    int c = to_lower(peek(ln, i));

    if (c == 'i' && (is_digit(prev) || prev == '?'))
        return match_word(ln, i, "it/s", &after);
    if (c == 's' && is_digit(prev))
        return match_word(ln, i, "s/it", &after);
    return 0;
}

static void offer_progress(line_scan_t *res, enum rank rank, double percent)
{
    /* Strictly greater, so the first match of a rank on the line stays. */
    if (percent >= 0 && rank > res->rank) {
        res->rank = rank;
        res->progress = percent;
    }
}

static void offer_stage(line_scan_t *res, enum stage stage)
{
    if (stage > res->stage)
        res->stage = stage;
}

/* Tries every pattern that can start a word at i. */
static void scan_word_start(const line_t *ln, size_t i, line_scan_t *res)
{
    int first = to_lower(peek(ln, i));
    size_t after;

    /* Comparing the first letter before calling match_word keeps punctuation runs cheap. */
    for (size_t k = 0; k < sizeof(stage_words) / sizeof(stage_words[0]); k++) {
        if (stage_words[k].word[0] == first && match_word(ln, i, stage_words[k].word, &after))
            offer_stage(res, stage_words[k].stage);
    }

    if (first == 's')
        offer_progress(res, RANK_STEP, parse_counter(ln, i, "step"));
    if (first == 'e')
        offer_progress(res, RANK_EPOCH, parse_counter(ln, i, "epoch"));
}

/* Tries every pattern at the visible byte i, given the visible byte before it. */
static void scan_position(const line_t *ln, size_t i, int prev, line_scan_t *res)
{
    int c = peek(ln, i);

    if (!is_alnum(prev))
        scan_word_start(ln, i, res);

    if (is_digit(c) && !is_alnum(prev) && prev != '.')
        offer_progress(res, RANK_PERCENT, parse_percent(ln, i));

    if (is_digit(c) && prev == ' ')
        offer_progress(res, RANK_BAR, parse_bar(ln, i));

    if (match_rate(ln, i, prev))
        offer_stage(res, STAGE_TRAINING);
}

static void scan_line(const line_t *ln, line_scan_t *res)
{
    /* The line start counts as a space, so a keyword there starts a word. */
    int prev = ' ';

    memset(res, 0, sizeof(*res));
    for (size_t i = visible_from(ln, ln->begin); i < ln->end; i = next_visible(ln, i)) {
        int c = peek(ln, i);

        scan_position(ln, i, prev, res);
        if (c != ' ')
            res->has_text = 1;
        prev = to_lower(c);
    }
}

/*
 * Returns the length of the valid UTF-8 character at i, with its bytes in
 * buf, or 0 when the bytes there do not form one. *next is the index to go on
 * from. An invalid sequence ends before the first byte that does not fit, so
 * that byte starts the next character, as WHATWG's decoder does.
 */
static size_t decode_utf8(const line_t *ln, size_t i, unsigned char buf[4], size_t *next)
{
    int lead = peek(ln, i);
    size_t len;
    int low = 0x80, high = 0xbf; /* allowed range of the second byte */

    *next = next_visible(ln, i);
    buf[0] = (unsigned char)lead;
    if (lead < 0x80)
        return 1;

    if (lead >= 0xc2 && lead <= 0xdf) {
        len = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        len = 3;
        low = lead == 0xe0 ? 0xa0 : low;   /* no overlong forms */
        high = lead == 0xed ? 0x9f : high; /* no UTF-16 surrogates */
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        len = 4;
        low = lead == 0xf0 ? 0x90 : low;   /* no overlong forms */
        high = lead == 0xf4 ? 0x8f : high; /* nothing past U+10FFFF */
    } else {
        return 0;
    }

    for (size_t k = 1; k < len; k++) {
        int c = peek(ln, *next);

        if (c < low || c > high)
            return 0;
        buf[k] = (unsigned char)c;
        *next = next_visible(ln, *next);
        low = 0x80;
        high = 0xbf;
    }
    return len;
}

/* last_log being written: len bytes, of which keep end before trailing spaces. */
typedef struct log_writer {
    char *buf;
    size_t len;
    size_t keep;
    size_t chars;
} log_writer_t;

static void write_char(log_writer_t *w, const unsigned char *bytes, size_t n)
{
    memcpy(w->buf + w->len, bytes, n);
    w->len += n;
    w->chars++;
    if (!(n == 1 && bytes[0] == ' '))
        w->keep = w->len;
}

/*
 * Copies the visible text of ln into buf (JW_LAST_LOG_MAX + 1 bytes): at most
 * JW_LAST_LOG_CHARS characters, invalid UTF-8 replaced by U+FFFD, spaces and
 * tabs trimmed at both ends. Trimming the start too means a line with text
 * never comes out empty, and tqdm's bar padding (" 30%|") is no use on a card.
 */
static void write_last_log(const line_t *ln, char *buf)
{
    static const unsigned char replacement[] = {0xef, 0xbf, 0xbd};
    log_writer_t w = {buf, 0, 0, 0};
    unsigned char utf8[4];
    size_t i = skip_any_of(ln, visible_from(ln, ln->begin), " ");

    while (i < ln->end && w.chars < JW_LAST_LOG_CHARS) {
        size_t n = decode_utf8(ln, i, utf8, &i);

        if (n == 0)
            write_char(&w, replacement, sizeof(replacement));
        else
            write_char(&w, utf8, n);
    }
    buf[w.keep] = '\0';
}

/* Returns the index where the line that ends at end starts. */
static size_t line_start(const unsigned char *bytes, size_t end)
{
    while (end > 0 && bytes[end - 1] != '\n')
        end--;
    return end;
}

/* Narrows [start, end) to the text after the last carriage return. */
static line_t last_redraw(const unsigned char *bytes, size_t start, size_t end)
{
    line_t ln = {bytes, start, end};

    while (ln.end > start && bytes[ln.end - 1] == '\r')
        ln.end--;
    ln.begin = ln.end;
    while (ln.begin > start && bytes[ln.begin - 1] != '\r')
        ln.begin--;
    return ln;
}

static double round_to_tenth(double percent)
{
    return round(percent * 10) / 10;
}

void jw_progress_scan(const char *logs, size_t len, jw_progress_t *out)
{
    const unsigned char *bytes = (const unsigned char *)logs;
    int have_stage = 0, have_progress = 0, have_log = 0;
    size_t end = len;

    out->stage = NULL;
    out->progress = -1;
    out->last_log[0] = '\0';
    if (logs == NULL)
        return;

    /* Newest line first, so a long log stops early once all three are known. */
    while (!(have_stage && have_progress && have_log)) {
        size_t start = line_start(bytes, end);
        line_t ln = last_redraw(bytes, start, end);
        line_scan_t res;

        scan_line(&ln, &res);
        if (!have_stage && res.stage != STAGE_NONE) {
            out->stage = stage_names[res.stage];
            have_stage = 1;
        }
        if (!have_progress && res.rank != RANK_NONE) {
            out->progress = round_to_tenth(res.progress);
            have_progress = 1;
        }
        if (!have_log && res.has_text) {
            write_last_log(&ln, out->last_log);
            have_log = 1;
        }

        if (start == 0)
            break;
        end = start - 1;
    }
}
