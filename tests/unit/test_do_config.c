/* do/config.c and do/migrations.c: the classes `migrations` leaves, the
 * namespace keys (stable across a rename, distinct per worker and class),
 * and the refusals, each naming the file and the key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "do/config.h"
#include "do/scripts.h"

static char err[2048];

/* Checks cfg (JSON text) as worker "w"; returns root (to decref), or NULL
 * with err set. */
static json_t *check(const char *worker, const char *cfg)
{
    json_t *root = json_loads(cfg, 0, NULL);

    assert_non_null(root);
    err[0] = 0;
    if (thaw_do_config(root, "wrangler.json", worker, err, sizeof(err))) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static const char *key_of(json_t *root, const char *cls)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(json_object_get(root, "_thaw_do"),
                                                        "classes"), cls), "key"));
}

#define BIND(c) "\"durable_objects\": {\"bindings\": [{\"name\": \"NS\", \"class_name\": \"" c "\"}]}"

static void a_counter_is_bound(void **state)
{
    json_t *r = check("w", "{" BIND("Counter") ", \"migrations\": [{\"tag\": \"v1\", "
                           "\"new_sqlite_classes\": [\"Counter\"]}]}");
    json_t *b;

    assert_non_null(r);
    b = json_object_get(json_object_get(json_object_get(r, "_thaw_do"), "bindings"), "NS");
    assert_string_equal(json_string_value(json_object_get(b, "class_name")), "Counter");
    assert_true(json_is_true(json_object_get(b, "sqlite")));
    assert_int_equal(strlen(key_of(r, "Counter")), 64);
    json_decref(r);
}

static void keys_follow_renames_and_differ_per_worker_and_class(void **state)
{
    json_t *a = check("w", "{\"migrations\": [{\"tag\": \"v1\", \"new_classes\": [\"A\", \"B\"]}]}");
    json_t *renamed = check("w", "{\"migrations\": [{\"tag\": \"v1\", \"new_classes\": [\"A\", \"B\"]},"
                                 "{\"tag\": \"v2\", \"renamed_classes\": [{\"from\": \"A\", \"to\": \"C\"}]}]}");
    json_t *other = check("x", "{\"migrations\": [{\"tag\": \"v1\", \"new_classes\": [\"A\"]}]}");

    assert_non_null(a);
    assert_non_null(renamed);
    assert_non_null(other);
    assert_string_equal(key_of(a, "A"), key_of(renamed, "C"));
    assert_null(key_of(renamed, "A"));
    assert_string_not_equal(key_of(a, "A"), key_of(a, "B"));
    assert_string_not_equal(key_of(a, "A"), key_of(other, "A"));
    json_decref(a);
    json_decref(renamed);
    json_decref(other);
}

static void nothing_to_do_leaves_the_config_alone(void **state)
{
    json_t *r = check("w", "{\"name\": \"w\"}");

    assert_non_null(r);
    assert_null(json_object_get(r, "_thaw_do"));
    json_decref(r);
}

static void refused(const char *cfg, const char *needle)
{
    assert_null(check("w", cfg));
    if (!strstr(err, needle) || strncmp(err, "wrangler.json: ", 15) != 0)
        fail_msg("%s\nnot in: %s", needle, err);
}

static void mistakes_are_refused_naming_the_key(void **state)
{
    refused("{" BIND("Counter") "}", "durable_objects.bindings[0] (\"NS\") binds class "
                                     "\"Counter\", which no migration creates");
    refused("{" BIND("A") ", \"migrations\": [{\"tag\": \"v1\", \"new_classes\": [\"A\"]},"
            "{\"tag\": \"v2\", \"deleted_classes\": [\"A\"]}]}",
            "migration \"v2\" deleted or renamed away");
    refused("{\"migrations\": [{\"tag\": \"v1\"}, {\"tag\": \"v1\"}]}",
            "migrations[1]: tag \"v1\" is the tag of migrations[0] too");
    refused("{\"migrations\": [{\"new_classes\": [\"A\"]}]}", "migrations[0]: `tag`");
    refused("{\"migrations\": [{\"tag\": \"v1\", \"new_classes\": [\"A\", \"A\"]}]}",
            "creates class \"A\", which migration \"v1\" already created");
    refused("{\"migrations\": [{\"tag\": \"v1\", \"deleted_classes\": [\"A\"]}]}",
            "`deleted_classes` names class \"A\", which no earlier migration created");
    refused("{\"migrations\": [{\"tag\": \"v1\", \"renamed_classes\": [{\"from\": \"A\"}]}]}",
            "`renamed_classes` must be an array of tables");
    refused("{\"migrations\": [{\"tag\": \"v1\", \"transferred_classes\": []}]}",
            "`transferred_classes`");
    refused("{\"durable_objects\": {\"bindings\": [{\"name\": \"NS\", \"class_name\": \"A\", "
            "\"script_name\": \"other\"}]}}", "`script_name`");
    refused("{\"durable_objects\": {\"bindings\": [{\"name\": \"NS\"}]}}", "`class_name`");
    refused("{\"durable_objects\": {\"bindings\": 5}}", "`durable_objects.bindings` must be");
    refused("{\"migrations\": {}}", "`migrations` must be an array");
}

static void its_own_script_name_is_its_own_class(void **state)
{
    json_t *r = check("w", "{\"durable_objects\": {\"bindings\": [{\"name\": \"NS\", "
                           "\"class_name\": \"A\", \"script_name\": \"w\"}]}, "
                           "\"migrations\": [{\"tag\": \"v1\", \"new_classes\": [\"A\"]}]}");

    assert_non_null(r);
    json_decref(r);
}

static int no_target(void *data, const char *from, const char *script, const char *cls,
                     struct thaw_do_target *out, char *e, size_t n)
{
    return -1;
}

/* With a resolver (thaw serve), another worker's class is a binding with
 * no key and no migration of its own; the class is looked up at call
 * time. script_name must still be a string. */
static void another_worker_s_class_under_serve(void **state)
{
    json_t *r, *b;

    thaw_do_set_resolver(no_target, NULL);
    r = check("w", "{\"durable_objects\": {\"bindings\": [{\"name\": \"NS\", "
                   "\"class_name\": \"Room\", \"script_name\": \"chat\"}]}}");
    assert_non_null(r);
    b = json_object_get(json_object_get(json_object_get(r, "_thaw_do"), "bindings"), "NS");
    assert_string_equal(json_string_value(json_object_get(b, "script")), "chat");
    assert_string_equal(json_string_value(json_object_get(b, "class_name")), "Room");
    assert_null(json_object_get(b, "key"));
    json_decref(r);
    assert_null(check("w", "{\"durable_objects\": {\"bindings\": [{\"name\": \"NS\", "
                           "\"class_name\": \"Room\", \"script_name\": 7}]}}"));
    assert_non_null(strstr(err, "`script_name` must be a string"));
    thaw_do_set_resolver(NULL, NULL);
    /* thaw dev again: refused, saying why */
    assert_null(check("w", "{\"durable_objects\": {\"bindings\": [{\"name\": \"NS\", "
                           "\"class_name\": \"Room\", \"script_name\": \"chat\"}]}}"));
    assert_non_null(strstr(err, "thaw dev runs one worker"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_counter_is_bound),
        cmocka_unit_test(keys_follow_renames_and_differ_per_worker_and_class),
        cmocka_unit_test(nothing_to_do_leaves_the_config_alone),
        cmocka_unit_test(mistakes_are_refused_naming_the_key),
        cmocka_unit_test(its_own_script_name_is_its_own_class),
        cmocka_unit_test(another_worker_s_class_under_serve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
