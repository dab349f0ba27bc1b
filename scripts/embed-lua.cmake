# Writes every Lua script named in SCRIPTS into OUT as a C string constant
# named jw_lua_<file name without .lua>, plus its length.
separate_arguments(SCRIPTS)
set(content "/* Generated from src/lua by scripts/embed-lua.cmake. */\n#include <stddef.h>\n")
foreach(script ${SCRIPTS})
    get_filename_component(name ${script} NAME_WE)
    file(READ ${script} hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
    string(APPEND content "const char jw_lua_${name}[] = {${hex}0};\n")
    string(APPEND content "const size_t jw_lua_${name}_len = sizeof(jw_lua_${name}) - 1;\n")
endforeach()
file(WRITE ${OUT} "${content}")
