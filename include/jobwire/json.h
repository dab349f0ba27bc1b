/*
 * The one place jobwire reads JSON: parsing outside input into a yajl tree
 * with guards yajl lacks (a nesting limit, no comments, no NUL bytes),
 * lookups by key path, and compact serialisation of a subtree. Building
 * new JSON documents is left to each module's own yajl_gen calls.
 *
 * Every lookup returns a pointer into the tree: it stays valid until the
 * caller frees the root with yajl_tree_free() and is never freed on its own.
 */
#ifndef JOBWIRE_JSON_H
#define JOBWIRE_JSON_H

#include <stddef.h>

#include <yajl/yajl_tree.h>

/* Deepest nesting of arrays and objects jw_json_parse() accepts. */
#define JW_JSON_MAX_DEPTH 64

/*
 * A key path for the lookups below, e.g. JW_JSON_PATH("metrics", "predict_time").
 * It expands to a NULL-terminated array with automatic storage, so it lives
 * only as long as the enclosing block.
 */
#define JW_JSON_PATH(...) ((const char *const[]){__VA_ARGS__, NULL})

/*
 * Parses len bytes of JSON text (no NUL terminator needed; trailing
 * whitespace such as a final newline is fine). The text must be one JSON
 * value in strict UTF-8, without comments or NUL bytes. yajl alone would
 * accept overlong forms and encoded surrogates. Nesting is limited to
 * JW_JSON_MAX_DEPTH levels because yajl_tree_free() and the serialiser
 * recurse once per level.
 * Returns a tree the caller frees with yajl_tree_free(), or NULL with a
 * one-line reason in err (which never quotes the input).
 * Escapes are decoded by yajl: strings in the tree are NUL-terminated, so
 * text after an escaped \u0000 is not visible, and a lone surrogate escape
 * becomes "?" (high) or its three-byte form (low) rather than an error.
 */
yajl_val jw_json_parse(const char *text, size_t len, char *err, size_t errlen);

/*
 * Follows path (object keys, NULL-terminated) from node. With duplicate
 * keys the last one wins, as in Python's json and JavaScript's JSON.parse. Returns the value,
 * borrowed from the tree, or NULL when a key is missing or a step is not
 * an object. A JSON null is returned as a yajl_t_null node, not NULL.
 * Unlike yajl_tree_get() from yajl 2.1.0, it never reads a wrong node
 * after a match.
 */
yajl_val jw_json_get(yajl_val node, const char *const *path);

/* Like jw_json_get(), but returns the string (borrowed), or NULL when the
 * value is missing or not a string. */
const char *jw_json_get_string(yajl_val node, const char *const *path);

/* Like jw_json_get(), but returns NULL unless the value is an object. */
yajl_val jw_json_get_object(yajl_val node, const char *const *path);

/*
 * Reads the number at path into *out. It parses the number's own text, so
 * every JSON form works (12, 0.5, 3e-06), and a value too small for a
 * double reads as 0 or a subnormal. Returns 0, or -1 (and leaves *out alone) when the
 * value is missing, not a number, or too large to be finite.
 */
int jw_json_get_number(yajl_val node, const char *const *path, double *out);

/*
 * Serialises value as compact JSON text (no spaces, numbers kept as they
 * were written, "/" not escaped). Returns a NUL-terminated string the
 * caller frees with free(), with its length in *len when len is not NULL;
 * or NULL when value is NULL, nested deeper than yajl_gen allows (128), or
 * memory runs out.
 */
char *jw_json_serialise(yajl_val value, size_t *len);

#endif
